/*
 * lianctl_journal.c - the auditor's commands journal checkpoint (fetch and
 * verify the signed checkpoint) and journal pull (download records that
 * match filters), and the checkpoint and leaf checks that journal verify
 * (lianctl_verify.c) shares with them.
 *
 * Every proof the gateway gives (RFC 9162 consistency and inclusion) is
 * checked here with the core library's Merkle code; the gateway is trusted
 * for nothing but its signed checkpoint.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "lianban.h"
#include "lianctl.h"

int
ctl_hashes(const msgpack_object *o, const char *key, msgpack_zone *z, uint8_t out[][32],
    size_t max, size_t *n)
{
	const msgpack_object	*list;
	const uint8_t		*p;
	size_t			 len;
	uint32_t		 i;

	if ((list = mpk_get(o, key)) == NULL || list->type != MSGPACK_OBJECT_ARRAY ||
	    list->via.array.size > max)
		return -1;
	for (i = 0; i < list->via.array.size; i++) {
		if (mpk_obj_bytes(&list->via.array.ptr[i], z, &p, &len) != 0 || len != 32)
			return -1;
		memcpy(out[i], p, 32);
	}
	*n = list->via.array.size;
	return 0;
}

/*
 * journal checkpoint
 */

int
ckpt_check(const msgpack_object *o, X509 *cert, const char *what, struct ckpt *ck)
{
	msgpack_zone	 z;
	struct envelope	 env;
	const uint8_t	*root, *eb, *proot;
	size_t		 rlen, elen, plen;
	uint64_t	 psize, pt;
	uint8_t		 kid[32];
	const char	*why;
	int		 ret = -1;

	memset(ck, 0, sizeof(*ck));
	msgpack_zone_init(&z, 2048);
	if (mpk_get_u64(o, "size", &ck->ck_size) != 0 ||
	    mpk_get_u64(o, "t_ms", &ck->ck_t_ms) != 0 ||
	    mpk_get_bytes(o, "root", &z, &root, &rlen) != 0 || rlen != 32 ||
	    mpk_get_bytes(o, "envelope", &z, &eb, &elen) != 0) {
		ctl_err("%s lacks size, root (32 bytes), t_ms or envelope", what);
		goto done;
	}
	memcpy(ck->ck_root, root, 32);
	if (envelope_parse(eb, elen, &z, "checkpoint", &env, &why) != 0) {
		ctl_err("%s: the signed envelope is malformed: %s", what, why);
		goto done;
	}
	if (key_id_cert(cert, kid) != 0 || memcmp(kid, env.env_kid, 32) != 0) {
		ctl_err("%s is signed by another key than the checkpoint certificate's "
		    "(wrong --checkpoint-cert, or a forged checkpoint)", what);
		goto done;
	}
	if (envelope_verify(&env, X509_get0_pubkey(cert)) != 0) {
		ERR_clear_error();
		ctl_err("%s: the signature does not verify with the checkpoint certificate",
		    what);
		goto done;
	}
	if (mpk_get_u64(&env.env_claims, "size", &psize) != 0 ||
	    mpk_get_u64(&env.env_claims, "t_ms", &pt) != 0 ||
	    mpk_get_bytes(&env.env_claims, "root", &z, &proot, &plen) != 0 || plen != 32 ||
	    mpk_get_str(&env.env_claims, "origin", ck->ck_origin, sizeof(ck->ck_origin)) != 0) {
		ctl_err("%s: the signed payload lacks origin, size, root or t_ms", what);
		goto done;
	}
	if (psize != ck->ck_size || pt != ck->ck_t_ms || memcmp(proot, ck->ck_root, 32) != 0) {
		ctl_err("%s: size, root or t_ms differ from what the signed envelope says",
		    what);
		goto done;
	}
	snprintf(ck->ck_alg, sizeof(ck->ck_alg), "%s", envelope_alg_name(env.env_alg));
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

X509 *
ckpt_cert_load(const struct ctl *ctl, const char *explicit)
{
	char		 buf[PATH_MAX], err[CTL_ERR_MAX];
	const char	*path;
	X509		*cert;

	if ((path = ctl_path(ctl, explicit, "journal/checkpoint.pem", buf, sizeof(buf))) == NULL)
		return NULL;
	if (cert_load(path, &cert, err, sizeof(err)) != 0) {
		ctl_err("%s (give --checkpoint-cert PEM or --certs DIR)", err);
		return NULL;
	}
	return cert;
}

int
ckpt_fetch(struct ctl *ctl, X509 *cert, struct ckpt *ck, struct http_resp *resp)
{
	msgpack_zone	z;
	msgpack_object	o;
	int		ret;

	msgpack_zone_init(&z, 2048);
	ret = http_get_object(ctl, "/v1/journal/checkpoint", &z, &o, resp);
	if (ret == CTL_OK && ckpt_check(&o, cert, "the gateway's checkpoint", ck) != 0)
		ret = CTL_FAIL;
	msgpack_zone_destroy(&z);
	return ret;
}

json_t *
ckpt_json(const struct ckpt *ck)
{
	char	hex[65], when[64];

	hex_encode(ck->ck_root, 32, hex);
	ctl_fmt_time_ms(ck->ck_t_ms, when, sizeof(when));
	return json_pack("{s:s, s:I, s:s, s:I, s:s, s:s}", "origin", ck->ck_origin,
	    "size", (json_int_t)ck->ck_size, "root", hex, "t_ms", (json_int_t)ck->ck_t_ms,
	    "time", when, "alg", ck->ck_alg);
}

static const struct optdef ckpt_opts[] = {
	{ "save", "FILE", OPT_STR, JS(js_save),
	  .od_help = "write the checkpoint JSON to FILE, for a later\n"
	  "\"journal verify --checkpoint FILE\"" },
	{ "checkpoint-cert", "PEM", OPT_STR, JS(js_cert),
	  .od_help = "the checkpoint signer's certificate\n(default DIR/journal/checkpoint.pem)" },
	{ "json", NULL, OPT_GLOBAL, 0, .od_help = "print the checkpoint as JSON" },
	{ "quiet", NULL, OPT_GLOBAL, 0, .od_help = "print nothing (verify, and save with --save)" },
	{ .od_name = NULL }
};

static int
ckpt_run(struct ctl *ctl, struct args *ar)
{
	struct journal_set	 s = { NULL, NULL, NULL, NULL, NULL, false };
	struct http_resp	 r;
	struct ckpt		 ck;
	X509			*cert = NULL;
	char			 hex[65], when[64];
	int			 ret;

	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	if ((cert = ckpt_cert_load(ctl, s.js_cert)) == NULL)
		return CTL_FAIL;
	ret = CTL_FAIL;
	memset(&r, 0, sizeof(r));
	if (ckpt_fetch(ctl, cert, &ck, &r) != CTL_OK)
		goto done;
	if (s.js_save != NULL && ctl_write_output(s.js_save, r.hr_body, r.hr_len) != 0)
		goto done;
	if (ctl->c_json) {
		if (ctl_json_print(ckpt_json(&ck)) != 0)
			goto done;
	} else if (!ctl->c_quiet) {
		hex_encode(ck.ck_root, 32, hex);
		ctl_fmt_time_ms(ck.ck_t_ms, when, sizeof(when));
		printf("size:      %llu\nroot:      %s\ntime:      %s\norigin:    %s\n"
		    "signature: ok (%s, checkpoint certificate)\n",
		    (unsigned long long)ck.ck_size, hex, when, ck.ck_origin, ck.ck_alg);
	}
	ret = CTL_OK;
done:
	http_resp_clear(&r);
	X509_free(cert);
	return ret;
}

const struct command cmd_journal_checkpoint = {
	.cm_name = "journal checkpoint",
	.cm_summary = "fetch and verify the journal's signed checkpoint",
	.cm_synopsis = "[global options] journal checkpoint [--save FILE]\n"
	"           [--checkpoint-cert PEM]",
	.cm_about =
	"Fetches the journal's latest signed checkpoint (GET /v1/journal/checkpoint;\n"
	"auditor role), verifies its signature and prints size, root, time and origin.\n",
	.cm_opts = ckpt_opts,
	.cm_ident = IDENT_NEEDED,
	.cm_run = ckpt_run
};

/*
 * journal pull
 */
static const char *const pull_formats[] = { "jsonl", "msgpack", NULL };
#define PULL_MSGPACK	1

#define PULL_QUERY_MAX	1024

struct pull_set {
	char		 pl_query[PULL_QUERY_MAX];	/* the filters, in the order given */
	int		 pl_format;		/* in pull_formats */
	const char	*pl_out;
};

/* Appends "&name=value" to a query, percent-encoding all but unreserved bytes. */
static int
query_add(char *q, size_t qsz, const char *name, const char *val)
{
	static const char	 hexd[] = "0123456789ABCDEF";
	const unsigned char	*p;
	size_t			 n = strlen(q);
	int			 w;

	w = snprintf(q + n, qsz - n, "%s%s=", n > 0 ? "&" : "", name);
	if (w < 0 || (size_t)w >= qsz - n)
		return -1;
	n += (size_t)w;
	for (p = (const unsigned char *)val; *p != '\0'; p++) {
		if (n + 4 > qsz)
			return -1;
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~')
			q[n++] = (char)*p;
		else {
			q[n++] = '%';
			q[n++] = hexd[*p >> 4];
			q[n++] = hexd[*p & 15];
		}
	}
	q[n] = '\0';
	return 0;
}

/*
 * A filter option becomes the query parameter of its name ("since-ms" is
 * "since_ms"); dst is the query.  The ones with a range are integers.
 */
static int
pull_opt_filter(void *dst, const struct optdef *od, const char *val)
{
	char	name[32], num[32];
	size_t	i;
	int64_t	v;

	for (i = 0; od->od_name[i] != '\0' && i + 1 < sizeof(name); i++)
		name[i] = od->od_name[i] == '-' ? '_' : od->od_name[i];
	name[i] = '\0';
	if (od->od_max > 0) {
		if (ctl_parse_i64(od->od_name, val, od->od_min, od->od_max, &v) != 0)
			return -1;
		snprintf(num, sizeof(num), "%lld", (long long)v);
		val = num;
	}
	if (val[0] == '\0' || query_add(dst, PULL_QUERY_MAX, name, val) != 0) {
		ctl_err("filter values must be non-empty and short");
		return -1;
	}
	return 0;
}

#define PL(m)	offsetof(struct pull_set, m)
static const struct optdef pull_opts[] = {
	{ "subject", "ID", OPT_FUNC, PL(pl_query), .od_func = pull_opt_filter,
	  .od_help = "a citizen's resident ID number (the gateway hashes it)" },
	{ "consumer", "ID", OPT_FUNC, PL(pl_query), .od_func = pull_opt_filter,
	  .od_help = "consumer (bundle service) id" },
	{ "dept", "ID", OPT_FUNC, PL(pl_query), .od_func = pull_opt_filter,
	  .od_help = "department id" },
	{ "item", "ITEM", OPT_FUNC, PL(pl_query), .od_func = pull_opt_filter,
	  .od_help = "item type, or for audit-read records the endpoint" },
	{ "since-ms", "MS", OPT_FUNC, PL(pl_query), 0, INT64_MAX, .od_func = pull_opt_filter,
	  .od_help = "records with t_ms >= MS (unix milliseconds)" },
	{ "until-ms", "MS", OPT_FUNC, PL(pl_query), 0, INT64_MAX, .od_func = pull_opt_filter,
	  .od_help = "records with t_ms < MS" },
	{ "format", "F", OPT_CHOICE, PL(pl_format), .od_choices = pull_formats,
	  .od_help = "jsonl (default): one JSON object per line, binary\n"
	  "values base64url; msgpack: a stream of msgpack maps" },
	{ "out", "FILE", OPT_STR, PL(pl_out),
	  .od_help = "write to FILE instead of standard output" },
	{ .od_name = NULL }
};
#undef PL

int
leaf_check(const uint8_t *leaf, size_t len, uint64_t seq, msgpack_zone *z, msgpack_object *rec)
{
	uint64_t	got;

	if (!mpk_is_canonical(leaf, len) || mpk_unpack_stored(leaf, len, z, rec) != 0 ||
	    rec->type != MSGPACK_OBJECT_MAP) {
		ctl_err("record %llu is not a canonical msgpack map", (unsigned long long)seq);
		return -1;
	}
	if (mpk_get_u64(rec, "seq", &got) != 0 || got != seq) {
		ctl_err("record %llu carries another seq than its position in the journal",
		    (unsigned long long)seq);
		return -1;
	}
	return 0;
}

/*
 * Writes one pulled record in the chosen format, as the gateway shows it:
 * {"seq","leaf","record"}, or flagged with "record_raw" and "record_error".
 */
static int
pull_write(FILE *fp, bool as_msgpack, uint64_t seq, const uint8_t *leaf, size_t len,
    msgpack_zone *z)
{
	msgpack_object	 e;
	msgpack_sbuffer	 sb;
	char		*json;
	int		 ret = -1;

	journal_record_show(z, seq, leaf, len, &e);
	if (as_msgpack) {
		msgpack_sbuffer_init(&sb);
		if (mpk_pack(&e, &sb, false) == 0 &&
		    fwrite(sb.data, 1, sb.size, fp) == sb.size)
			ret = 0;
		msgpack_sbuffer_destroy(&sb);
	} else if ((json = mpk_to_json(&e, false)) != NULL) {
		if (fprintf(fp, "%s\n", json) >= 0)
			ret = 0;
		free(json);
	}
	if (ret != 0)
		ctl_err("cannot write record %llu: %s", (unsigned long long)seq, strerror(errno));
	return ret;
}

/* Writes one page of a records answer; *last and *n follow what was written. */
static int
pull_page(FILE *fp, bool as_msgpack, const msgpack_object *o, bool *have_last,
    uint64_t *last, uint64_t *n)
{
	msgpack_zone		 z;
	msgpack_object		 rec;
	const msgpack_object	*list, *e;
	const uint8_t		*leaf;
	size_t			 len;
	uint64_t		 seq;
	uint32_t		 i;
	int			 ret = -1;

	msgpack_zone_init(&z, 8192);
	if ((list = mpk_get(o, "records")) == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("the gateway's records answer has no \"records\" list");
		goto done;
	}
	for (i = 0; i < list->via.array.size; i++) {
		e = &list->via.array.ptr[i];
		if (mpk_get_u64(e, "seq", &seq) != 0 ||
		    mpk_get_bytes(e, "leaf", &z, &leaf, &len) != 0) {
			ctl_err("a record of the answer lacks seq or leaf");
			goto done;
		}
		if (*have_last && seq <= *last) {
			ctl_err("the gateway's records are not in seq order");
			goto done;
		}
		if (leaf_check(leaf, len, seq, &z, &rec) != 0 ||
		    pull_write(fp, as_msgpack, seq, leaf, len, &z) != 0)
			goto done;
		*have_last = true;
		*last = seq;
		(*n)++;
	}
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

static int
pull_run(struct ctl *ctl, struct args *ar)
{
	struct pull_set		 s;
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*next;
	FILE			*fp = stdout;
	char			 path[1200];
	bool			 have_last = false, more, paging = false;
	uint64_t		 last = 0, n = 0, after = 0;
	int			 ret;

	memset(&s, 0, sizeof(s));
	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	if (s.pl_out != NULL && (fp = fopen(s.pl_out, "w")) == NULL) {
		ctl_err("cannot write %s: %s", s.pl_out, strerror(errno));
		return CTL_FAIL;
	}
	ret = CTL_FAIL;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	for (more = true; more; ) {
		snprintf(path, sizeof(path), "/v1/journal/records?limit=1000%s%s",
		    s.pl_query[0] != '\0' ? "&" : "", s.pl_query);
		if (paging)
			snprintf(path + strlen(path), sizeof(path) - strlen(path), "&after=%llu",
			    (unsigned long long)after);
		msgpack_zone_clear(&z);
		if (http_get_object(ctl, path, &z, &o, &r) != CTL_OK ||
		    pull_page(fp, s.pl_format == PULL_MSGPACK, &o, &have_last, &last, &n) != 0)
			goto done;
		http_resp_clear(&r);
		next = mpk_get(&o, "next");
		more = next != NULL && next->type != MSGPACK_OBJECT_NIL;
		if (more && (mpk_obj_u64(next, &after) != 0 || (have_last && after < last))) {
			ctl_err("the gateway's cursor is malformed");
			goto done;
		}
		paging = true;
	}
	if (fflush(fp) != 0 || ferror(fp)) {
		ctl_err("cannot write %s: %s", s.pl_out != NULL ? s.pl_out : "standard output",
		    strerror(errno));
		goto done;
	}
	if (s.pl_out != NULL && !ctl->c_quiet)
		fprintf(stderr, "%llu records written to %s\n", (unsigned long long)n, s.pl_out);
	ret = CTL_OK;
done:
	if (s.pl_out != NULL && fclose(fp) != 0 && ret == CTL_OK) {
		ctl_err("cannot write %s: %s", s.pl_out, strerror(errno));
		ret = CTL_FAIL;
	}
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_journal_pull = {
	.cm_name = "journal pull",
	.cm_summary = "download the journal records that match filters",
	.cm_synopsis = "[global options] journal pull [--subject ID] [--consumer ID]\n"
	"           [--dept ID] [--item ITEM] [--since-ms MS] [--until-ms MS]\n"
	"           [--format jsonl|msgpack] [--out FILE]",
	.cm_about =
	"Downloads the journal records that match every filter given (GET\n"
	"/v1/journal/records, following its cursor; auditor role), in seq order.\n"
	"Each record is written as {\"seq\", \"leaf\", \"record\"}: leaf is the record's\n"
	"stored bytes (the Merkle leaf), record the same decoded.  Each one is checked\n"
	"to be canonical msgpack carrying its own seq.  A record JSON cannot show\n"
	"(text that is not UTF-8, from an older gateway) is written as {\"seq\",\n"
	"\"leaf\", \"record_raw\", \"record_error\"} instead.\n",
	.cm_notes = "\"journal verify --records FILE\" proves that pulled records are in the "
	"journal.\n",
	.cm_opts = pull_opts,
	.cm_ident = IDENT_NEEDED,
	.cm_run = pull_run
};

