/*
 * lianctl_verify.c - journal verify: recompute the whole journal from its
 * leaves, check it against the signed checkpoint, and prove saved
 * checkpoints (consistency) and pulled records (inclusion) against it.
 *
 * Every proof the gateway gives (RFC 9162) is checked here with the core
 * library's Merkle code; the gateway is trusted for nothing but its signed
 * checkpoint.  Every call goes over the command's one connection.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "lianban.h"
#include "lianctl.h"

/*
 * Whether the tree of the first m records, whose root is root_m, is a
 * prefix of the signed tree (size, root): the gateway's consistency proof
 * from m to size must verify.  A malformed proof proves nothing: *ok is
 * false.  -1 (reported) when the proof cannot be fetched.
 */
static int
proof_consistent(struct ctl *ctl, uint64_t m, const uint8_t root_m[32], uint64_t size,
    const uint8_t root[32], bool *ok)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	uint8_t			 path[MK_MAX_PATH][32];
	size_t			 npath;
	char			 q[128];
	int			 ret = -1;

	/* The empty tree is a prefix of every tree. */
	*ok = m == 0;
	if (m == 0)
		return 0;
	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 4096);
	snprintf(q, sizeof(q), "/v1/journal/proof/consistency?first=%llu&second=%llu",
	    (unsigned long long)m, (unsigned long long)size);
	if (http_get_object(ctl, q, &z, &o, &r) != CTL_OK)
		goto done;
	*ok = ctl_hashes(&o, "path", &z, path, MK_MAX_PATH, &npath) == 0 &&
	    merkle_verify_consistency(MK_SHA256, m, size, root_m, root, path, npath) == 0;
	ret = 0;
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Proves one pulled record (a map {"seq","leaf","record"}) is in cur's tree. */
static int
verify_one_record(struct ctl *ctl, const msgpack_object *e, const struct ckpt *cur,
    const char *file)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o, rec;
	const msgpack_object	*given;
	const uint8_t		*leaf, *raw;
	uint8_t			 lh[32], path[MK_MAX_PATH][32];
	size_t			 len, rawlen, npath;
	uint64_t		 seq;
	char			 q[128], *j1 = NULL, *j2 = NULL;
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 4096);
	if (e->type != MSGPACK_OBJECT_MAP || mpk_get_u64(e, "seq", &seq) != 0 ||
	    mpk_get_bytes(e, "leaf", &z, &leaf, &len) != 0) {
		ctl_err("%s: an entry lacks seq or leaf", file);
		goto done;
	}
	if (leaf_check(leaf, len, seq, &z, &rec) != 0)
		goto done;
	/* The decoded copy, or the raw bytes of a flagged record, must be the leaf's. */
	if ((given = mpk_get(e, "record")) != NULL &&
	    ((j1 = mpk_to_json(given, false)) == NULL ||
	    (j2 = mpk_to_json(&rec, false)) == NULL || strcmp(j1, j2) != 0)) {
		ctl_err("%s: the decoded record %llu differs from its leaf", file,
		    (unsigned long long)seq);
		goto done;
	}
	if (mpk_get(e, "record_raw") != NULL &&
	    (mpk_get_bytes(e, "record_raw", &z, &raw, &rawlen) != 0 || rawlen != len ||
	    memcmp(raw, leaf, len) != 0)) {
		ctl_err("%s: the raw record %llu differs from its leaf", file,
		    (unsigned long long)seq);
		goto done;
	}
	if (seq >= cur->ck_size) {
		ctl_err("%s: record %llu is beyond the current checkpoint (%llu records)", file,
		    (unsigned long long)seq, (unsigned long long)cur->ck_size);
		goto done;
	}
	snprintf(q, sizeof(q), "/v1/journal/proof/inclusion?seq=%llu&size=%llu",
	    (unsigned long long)seq, (unsigned long long)cur->ck_size);
	if (http_get_object(ctl, q, &z, &o, &r) != CTL_OK)
		goto done;
	if (ctl_hashes(&o, "path", &z, path, MK_MAX_PATH, &npath) != 0) {
		ctl_err("the gateway's inclusion proof of record %llu is malformed",
		    (unsigned long long)seq);
		goto done;
	}
	merkle_leaf_hash(MK_SHA256, leaf, len, lh);
	if (merkle_verify_inclusion(MK_SHA256, lh, seq, cur->ck_size, path, npath,
	    cur->ck_root) != 0) {
		ctl_err("%s: record %llu is not in the journal as signed by the checkpoint "
		    "(its inclusion proof does not verify)", file, (unsigned long long)seq);
		goto done;
	}
	ret = 0;
done:
	free(j1);
	free(j2);
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Every record of a "journal pull" file, JSON Lines or a msgpack stream. */
static int
verify_records(struct ctl *ctl, const char *file, const struct ckpt *cur, uint64_t *count)
{
	msgpack_unpacked	 up;
	msgpack_zone		 z;
	msgpack_object		 o;
	uint8_t			*buf = NULL;
	size_t			 len, off = 0, eol;
	char			 err[256];
	int			 ret = -1;

	*count = 0;
	if (ctl_read_input(file, CTL_BODY_MAX, &buf, &len) != 0)
		return -1;
	msgpack_unpacked_init(&up);
	msgpack_zone_init(&z, 4096);
	if (len > 0 && ctl_is_msgpack(buf[0])) {
		while (off < len) {
			if (msgpack_unpack_next(&up, (const char *)buf, len, &off) !=
			    MSGPACK_UNPACK_SUCCESS) {
				ctl_err("%s: not a stream of msgpack maps", file);
				goto done;
			}
			if (verify_one_record(ctl, &up.data, cur, file) != 0)
				goto done;
			(*count)++;
		}
	} else {
		for (; off < len; off = eol + 1) {
			for (eol = off; eol < len && buf[eol] != '\n'; eol++)
				;
			if (eol == off)
				continue;
			msgpack_zone_clear(&z);
			if (mpk_from_json((const char *)buf + off, eol - off, &z, &o, err,
			    sizeof(err)) != 0) {
				ctl_err("%s: line %llu: %s", file, (unsigned long long)*count + 1,
				    err);
				goto done;
			}
			if (verify_one_record(ctl, &o, cur, file) != 0)
				goto done;
			(*count)++;
		}
	}
	ret = 0;
done:
	msgpack_unpacked_destroy(&up);
	msgpack_zone_destroy(&z);
	free(buf);
	return ret;
}

/* What journal verify recomputes, page by page. */
struct jwalk {
	struct merkle_cr	 jw_cr;
	const struct ckpt	*jw_saved;	/* NULL without --checkpoint */
	bool			 jw_saved_ok;	/* its root was met and matched */
	bool			 jw_saved_bad;	/* its root was met and differed */
	/*
	 * jw_cr as it was before each page: enough to recompute the root of
	 * any prefix, so that a mismatch can be narrowed down to one record.
	 * Without memory for them, verification still works, less helpfully.
	 */
	struct merkle_cr	*jw_marks;
	size_t			 jw_nmarks, jw_capmarks;
	bool			 jw_nomarks;
	verify_leaf_fn		 jw_each;	/* each record, when not NULL */
	void			*jw_arg;
};

/* Remembers the compact range before the page about to be read. */
static void
jwalk_mark(struct jwalk *w)
{
	struct merkle_cr	*m;
	size_t			 cap;

	if (w->jw_nomarks)
		return;
	if (w->jw_nmarks == w->jw_capmarks) {
		cap = w->jw_capmarks == 0 ? 64 : w->jw_capmarks * 2;
		if (cap > SIZE_MAX / sizeof(*m) ||
		    (m = realloc(w->jw_marks, cap * sizeof(*m))) == NULL) {
			w->jw_nomarks = true;
			return;
		}
		w->jw_marks = m;
		w->jw_capmarks = cap;
	}
	w->jw_marks[w->jw_nmarks++] = w->jw_cr;
}

/*
 * After the records read did not recompute to the signed root of a tree of
 * size records, finds the first record that is not the one signed: the
 * longest prefix the gateway can prove consistent with the signed tree ends
 * just before it.  Binary search, first over the pages read, then inside one
 * page, so it costs about log2(size) proofs.  Names the record on stderr;
 * -1 when it cannot tell.
 */
static int
jwalk_locate(struct ctl *ctl, const struct jwalk *w, uint64_t size, const uint8_t root[32])
{
	struct http_resp	 r;
	struct merkle_cr	 cr;
	msgpack_zone		 z;
	msgpack_object		 o;
	const msgpack_object	*leaves;
	const uint8_t		*b;
	uint8_t			 rm[32], (*hashes)[32] = NULL;
	uint64_t		 start, end, lo, hi, mid, m;
	size_t			 nmarks = 0, page, i, len;
	char			 path[128];
	bool			 ok;
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	if (w->jw_nomarks || w->jw_nmarks == 0 || size == 0)
		goto done;
	/* The pages that start inside the tree; the first starts at 0. */
	while (nmarks < w->jw_nmarks && w->jw_marks[nmarks].cr_size < size)
		nmarks++;
	if (nmarks == 0 || w->jw_marks[0].cr_size != 0)
		goto done;
	/* Page boundaries: the first (lo) is a good prefix, the last (hi) is not. */
	lo = 0;
	hi = nmarks;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		merkle_cr_root(MK_SHA256, &w->jw_marks[mid], rm);
		if (proof_consistent(ctl, w->jw_marks[mid].cr_size, rm, size, root, &ok) != 0)
			goto done;
		if (ok)
			lo = mid;
		else
			hi = mid;
	}
	/* The first bad record is in the page starting at mark lo. */
	page = lo;
	start = w->jw_marks[page].cr_size;
	end = hi < nmarks ? w->jw_marks[hi].cr_size : size;
	if (end <= start || end - start > CTL_LEAVES_PAGE ||
	    (hashes = calloc(end - start, sizeof(*hashes))) == NULL)
		goto done;
	snprintf(path, sizeof(path), "/v1/journal/leaves?start=%llu&end=%llu",
	    (unsigned long long)start, (unsigned long long)end);
	if (http_get_object(ctl, path, &z, &o, &r) != CTL_OK)
		goto done;
	if ((leaves = mpk_get(&o, "leaves")) == NULL || leaves->type != MSGPACK_OBJECT_ARRAY ||
	    leaves->via.array.size != end - start)
		goto done;
	for (i = 0; i < leaves->via.array.size; i++) {
		if (mpk_obj_bytes(&leaves->via.array.ptr[i], &z, &b, &len) != 0)
			goto done;
		merkle_leaf_hash(MK_SHA256, b, len, hashes[i]);
	}
	/* Prefix lengths: start is good, end is not. */
	lo = start;
	hi = end;
	while (hi - lo > 1) {
		mid = lo + (hi - lo) / 2;
		cr = w->jw_marks[page];
		for (m = start; m < mid; m++)
			merkle_cr_append(MK_SHA256, &cr, hashes[m - start]);
		merkle_cr_root(MK_SHA256, &cr, rm);
		if (proof_consistent(ctl, mid, rm, size, root, &ok) != 0)
			goto done;
		if (ok)
			lo = mid;
		else
			hi = mid;
	}
	ctl_err("record %llu does not match the journal the checkpoint of %llu records signed: "
	    "the first %llu records are consistent with it, record %llu is not",
	    (unsigned long long)lo, (unsigned long long)size, (unsigned long long)lo,
	    (unsigned long long)lo);
	ret = 0;
done:
	free(hashes);
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* Adds one page of leaves [start, start + n) to the walk; n is returned in *got. */
static int
jwalk_page(struct jwalk *w, const msgpack_object *o, uint64_t start, uint64_t want,
    uint64_t *got)
{
	msgpack_zone		 z;
	msgpack_object		 rec;
	const msgpack_object	*leaves;
	const uint8_t		*b;
	size_t			 len;
	uint64_t		 idx;
	uint32_t		 i;
	uint8_t			 leaf[32], root[32];
	char			 hex1[65], hex2[65];
	int			 ret = -1;

	msgpack_zone_init(&z, 8192);
	if ((leaves = mpk_get(o, "leaves")) == NULL || leaves->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("the gateway's leaves answer has no \"leaves\" list");
		goto done;
	}
	if (leaves->via.array.size == 0 || leaves->via.array.size > want) {
		ctl_err("the gateway returned %u leaves when asked for records %llu to %llu",
		    leaves->via.array.size, (unsigned long long)start,
		    (unsigned long long)(start + want - 1));
		goto done;
	}
	for (i = 0; i < leaves->via.array.size; i++) {
		idx = start + i;
		if (mpk_obj_bytes(&leaves->via.array.ptr[i], &z, &b, &len) != 0) {
			ctl_err("record %llu is not bytes (base64url)", (unsigned long long)idx);
			goto done;
		}
		if (leaf_check(b, len, idx, &z, &rec) != 0)
			goto done;
		merkle_leaf_hash(MK_SHA256, b, len, leaf);
		merkle_cr_append(MK_SHA256, &w->jw_cr, leaf);
		if (w->jw_each != NULL && w->jw_each(w->jw_arg, idx, leaf, &rec) != 0)
			goto done;
		if (w->jw_saved != NULL && w->jw_cr.cr_size == w->jw_saved->ck_size) {
			merkle_cr_root(MK_SHA256, &w->jw_cr, root);
			if (memcmp(root, w->jw_saved->ck_root, 32) != 0) {
				hex_encode(root, 32, hex1);
				hex_encode(w->jw_saved->ck_root, 32, hex2);
				ctl_err("the first %llu records have root %s, but the saved "
				    "checkpoint signed root %s: the journal was rewritten after "
				    "that checkpoint", (unsigned long long)w->jw_saved->ck_size,
				    hex1, hex2);
				w->jw_saved_bad = true;
				goto done;
			}
			w->jw_saved_ok = true;
		}
	}
	*got = leaves->via.array.size;
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

/*
 * Reads the records [from, to) into w; on a mismatch with the saved
 * checkpoint, names the first record that differs from it.
 */
static int
jwalk_range(struct ctl *ctl, struct jwalk *w, uint64_t from, uint64_t to)
{
	struct http_resp	 r;
	msgpack_zone		 z;
	msgpack_object		 o;
	uint64_t		 start, want, got;
	char			 path[128];
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	msgpack_zone_init(&z, 8192);
	for (start = from; start < to; start += got) {
		want = to - start;
		if (want > CTL_LEAVES_PAGE)
			want = CTL_LEAVES_PAGE;
		snprintf(path, sizeof(path), "/v1/journal/leaves?start=%llu&end=%llu",
		    (unsigned long long)start, (unsigned long long)(start + want));
		msgpack_zone_clear(&z);
		jwalk_mark(w);
		if (http_get_object(ctl, path, &z, &o, &r) != CTL_OK)
			goto done;
		if (jwalk_page(w, &o, start, want, &got) != 0) {
			if (w->jw_saved_bad)
				(void)jwalk_locate(ctl, w, w->jw_saved->ck_size,
				    w->jw_saved->ck_root);
			goto done;
		}
		http_resp_clear(&r);
	}
	ret = 0;
done:
	http_resp_clear(&r);
	msgpack_zone_destroy(&z);
	return ret;
}

/* A saved checkpoint and the current one must be of one journal that only grew. */
static int
verify_saved(const struct ckpt *saved, const struct ckpt *cur, struct jwalk *w)
{
	uint8_t	root[32];

	if (strcmp(saved->ck_origin, cur->ck_origin) != 0) {
		ctl_err("the saved checkpoint is from gateway \"%s\", the current one "
		    "from \"%s\"", saved->ck_origin, cur->ck_origin);
		return -1;
	}
	if (saved->ck_size > cur->ck_size) {
		ctl_err("the saved checkpoint covers %llu records but the journal now "
		    "has only %llu: records were removed",
		    (unsigned long long)saved->ck_size, (unsigned long long)cur->ck_size);
		return -1;
	}
	if (saved->ck_size == 0) {
		merkle_cr_root(MK_SHA256, &w->jw_cr, root);
		if (memcmp(root, saved->ck_root, 32) != 0) {
			ctl_err("the saved checkpoint of the empty journal has a wrong root");
			return -1;
		}
		w->jw_saved_ok = true;
	}
	return 0;
}

/* The verdict of a journal that verified. */
static int
verify_print(const struct ctl *ctl, const struct journal_set *s, const struct ckpt *cur,
    const struct ckpt *saved, uint64_t nrec)
{
	json_t	*j;
	char	 hex[65], when[64];

	if (ctl->c_json) {
		j = json_pack("{s:b, s:o}", "verified", 1, "checkpoint", ckpt_json(cur));
		if (j != NULL && s->js_saved != NULL &&
		    json_object_set_new(j, "saved_checkpoint", ckpt_json(saved)) != 0) {
			json_decref(j);
			j = NULL;
		}
		if (j != NULL && s->js_records != NULL &&
		    json_object_set_new(j, "records_included", json_integer((json_int_t)nrec)) != 0) {
			json_decref(j);
			j = NULL;
		}
		return ctl_json_print(j);
	}
	if (ctl->c_quiet)
		return 0;
	hex_encode(cur->ck_root, 32, hex);
	ctl_fmt_time_ms(cur->ck_t_ms, when, sizeof(when));
	printf("journal verified: %llu records, root %s matches the checkpoint signed "
	    "by %s at %s\n", (unsigned long long)cur->ck_size, hex, cur->ck_origin, when);
	if (s->js_saved != NULL) {
		hex_encode(saved->ck_root, 32, hex);
		ctl_fmt_time_ms(saved->ck_t_ms, when, sizeof(when));
		printf("saved checkpoint verified: its %llu records (root %s, signed at "
		    "%s) are the first %llu of the journal, and the consistency proof "
		    "verifies\n", (unsigned long long)saved->ck_size, hex, when,
		    (unsigned long long)saved->ck_size);
	}
	if (s->js_records != NULL)
		printf("records verified: all %llu records of %s are in the journal "
		    "(inclusion proofs)\n", (unsigned long long)nrec, s->js_records);
	return 0;
}

/*
 * The current checkpoint fetched and checked (and the saved one, when
 * given, checked against it), every record read into w, and the root they
 * make compared with the signed one; -1 when reported.
 */
static int
verify_walk(struct ctl *ctl, X509 *cert, const struct ckpt *saved, struct ckpt *cur,
    struct jwalk *w)
{
	struct http_resp	 r;
	uint8_t			 root[32];
	char			 hex[65], hex2[65], when[64];
	int			 ret = -1;

	memset(&r, 0, sizeof(r));
	if (ckpt_fetch(ctl, cert, cur, &r) != CTL_OK)
		goto done;
	if (saved != NULL && verify_saved(saved, cur, w) != 0)
		goto done;
	if (jwalk_range(ctl, w, 0, cur->ck_size) != 0)
		goto done;
	merkle_cr_root(MK_SHA256, &w->jw_cr, root);
	if (memcmp(root, cur->ck_root, 32) != 0) {
		hex_encode(root, 32, hex);
		hex_encode(cur->ck_root, 32, hex2);
		ctl_fmt_time_ms(cur->ck_t_ms, when, sizeof(when));
		ctl_err("the %llu records recompute to root %s, but the checkpoint signed by "
		    "%s at %s says %s: the journal does not match its checkpoint",
		    (unsigned long long)cur->ck_size, hex, cur->ck_origin, when, hex2);
		(void)jwalk_locate(ctl, w, cur->ck_size, cur->ck_root);
		goto done;
	}
	ret = 0;
done:
	http_resp_clear(&r);
	return ret;
}

int
verify_leaves(struct ctl *ctl, uint64_t from, uint64_t to, verify_leaf_fn each, void *arg)
{
	struct jwalk	w;
	int		ret;

	memset(&w, 0, sizeof(w));
	merkle_cr_init(&w.jw_cr);
	w.jw_nomarks = true;
	w.jw_each = each;
	w.jw_arg = arg;
	ret = jwalk_range(ctl, &w, from, to) == 0 ? CTL_OK : CTL_FAIL;
	free(w.jw_marks);
	return ret;
}

int
verify_tree(struct ctl *ctl, X509 *cert, struct ckpt *cur, verify_leaf_fn each, void *arg)
{
	struct jwalk	w;
	int		ret;

	memset(&w, 0, sizeof(w));
	merkle_cr_init(&w.jw_cr);
	w.jw_each = each;
	w.jw_arg = arg;
	ret = verify_walk(ctl, cert, NULL, cur, &w) == 0 ? CTL_OK : CTL_FAIL;
	free(w.jw_marks);
	return ret;
}

static const struct optdef verify_opts[] = {
	{ "checkpoint", "FILE", OPT_STR, JS(js_saved),
	  .od_help = "also check an earlier checkpoint saved with\n"
	  "\"journal checkpoint --save\": its signature, and that\n"
	  "its root is the root of the journal's first records,\n"
	  "so the journal only grew since it was saved; the\n"
	  "gateway's consistency proof from it to the current\n"
	  "checkpoint (RFC 9162) must verify as well" },
	{ "records", "FILE", OPT_STR, JS(js_records),
	  .od_help = "also prove that every record of FILE (written by\n"
	  "\"journal pull\") is in the current tree, with the\n"
	  "gateway's inclusion proofs (RFC 9162)" },
	{ "archive", "FILE", OPT_STR, JS(js_archive),
	  .od_help = "instead, check an archive written by \"journal\n"
	  "archive\", offline: its records recompute to the\n"
	  "root its signed checkpoint says (no gateway, no\n"
	  "client identity needed)" },
	{ "checkpoint-cert", "PEM", OPT_STR, JS(js_cert),
	  .od_help = "the checkpoint signer's certificate\n(default DIR/journal/checkpoint.pem)" },
	{ "cluster", NULL, OPT_FLAG, JS(js_cluster),
	  .od_help = "instead, verify every node of the gateway's\n"
	  "cluster: each node's tree, every cosignature its\n"
	  "peers made of it, and that no exchange is in two\n"
	  "nodes' journals (the nodes are the gateway and the\n"
	  "peers its GET /v1/journal/witness names)" },
	{ "json", NULL, OPT_GLOBAL, 0, .od_help = "print the result as JSON" },
	{ "quiet", NULL, OPT_GLOBAL, 0, .od_help = "print nothing on success" },
	{ .od_name = NULL }
};

/* --archive is checked offline, without the gateway the other options ask. */
static int
verify_check(const void *set, const struct args *ar)
{
	const struct journal_set	*s = set;

	if (s->js_cluster && (s->js_archive != NULL || s->js_saved != NULL ||
	    s->js_records != NULL)) {
		ctl_err("%s: --cluster does not go with --archive, --checkpoint or --records",
		    ar->ar_name);
		ctl_usage_hint(ar);
		return -1;
	}
	if (s->js_archive != NULL && (s->js_saved != NULL || s->js_records != NULL)) {
		ctl_err("%s: --archive checks a file offline; it does not go with --checkpoint "
		    "or --records", ar->ar_name);
		ctl_usage_hint(ar);
		return -1;
	}
	return 0;
}

static int
verify_run(struct ctl *ctl, struct args *ar)
{
	struct journal_set	 s;
	struct ckpt		 cur, saved;
	struct jwalk		 w;
	msgpack_zone		 z;
	msgpack_object		 o;
	X509			*cert = NULL;
	uint64_t		 nrec = 0;
	char			 what[PATH_MAX + 32];
	int			 ret;

	memset(&s, 0, sizeof(s));
	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	if (s.js_archive != NULL)
		return archive_verify(ctl, &s);
	if (ctl->c_cert == NULL || ctl->c_key == NULL) {
		ctl_err("%s needs a client identity: give --cert PEM and --key PEM", ar->ar_name);
		return CTL_USAGE;
	}
	if ((cert = ckpt_cert_load(ctl, s.js_cert)) == NULL)
		return CTL_FAIL;
	if (s.js_cluster) {
		ret = cluster_verify(ctl, cert);
		X509_free(cert);
		return ret;
	}
	ret = CTL_FAIL;
	memset(&w, 0, sizeof(w));
	memset(&saved, 0, sizeof(saved));
	merkle_cr_init(&w.jw_cr);
	msgpack_zone_init(&z, 2048);

	/* The saved checkpoint first: a broken file should not cost a download. */
	if (s.js_saved != NULL) {
		snprintf(what, sizeof(what), "saved checkpoint %s", s.js_saved);
		if (archive_saved_load(s.js_saved, &z, &o) != 0 ||
		    ckpt_check(&o, cert, what, &saved) != 0)
			goto done;
		w.jw_saved = &saved;
	}
	if (verify_walk(ctl, cert, s.js_saved != NULL ? &saved : NULL, &cur, &w) != 0)
		goto done;
	if (s.js_saved != NULL) {
		if (!w.jw_saved_ok) {
			ctl_err("the saved checkpoint was never reached while reading the journal");
			goto done;
		}
		if (proof_consistent(ctl, saved.ck_size, saved.ck_root, cur.ck_size, cur.ck_root,
		    &w.jw_saved_ok) != 0)
			goto done;
		if (!w.jw_saved_ok) {
			ctl_err("the consistency proof from the saved checkpoint (%llu records) to "
			    "the current one (%llu records) does not verify: the journal was "
			    "rewritten", (unsigned long long)saved.ck_size,
			    (unsigned long long)cur.ck_size);
			goto done;
		}
	}
	if (s.js_records != NULL && verify_records(ctl, s.js_records, &cur, &nrec) != 0)
		goto done;
	if (verify_print(ctl, &s, &cur, &saved, nrec) != 0)
		goto done;
	ret = CTL_OK;
done:
	free(w.jw_marks);
	msgpack_zone_destroy(&z);
	X509_free(cert);
	return ret;
}

const struct command cmd_journal_verify = {
	.cm_name = "journal verify",
	.cm_summary = "recompute the whole journal and check it against the checkpoint",
	.cm_synopsis = "[global options] journal verify [--checkpoint FILE]\n"
	"           [--records FILE] [--checkpoint-cert PEM]\n"
	"       lianctl [global options] journal verify --archive FILE [--checkpoint-cert PEM]\n"
	"       lianctl [global options] journal verify --cluster [--checkpoint-cert PEM]",
	.cm_about =
	"Downloads every journal record (GET /v1/journal/leaves, 1000 per call;\n"
	"auditor role), checks that each is canonical msgpack whose \"seq\" is its\n"
	"position, recomputes the RFC 6962 root and compares it with the current\n"
	"signed checkpoint.  When they differ, it names the first record that is\n"
	"not the one the checkpoint signed (a binary search with the gateway's\n"
	"consistency proofs).  Every call goes over one connection.\n",
	.cm_notes = "--checkpoint FILE also takes an archive (\"journal archive\"): the journal\n"
	"must then extend the checkpoint the archive ends with.\n",
	.cm_opts = verify_opts,
	.cm_check = verify_check,
	/* Needed but for --archive, which verify_run checks. */
	.cm_ident = IDENT_OPTIONAL,
	.cm_run = verify_run
};
