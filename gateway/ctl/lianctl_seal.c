/*
 * lianctl_seal.c - seal verify: checks, offline, the seal of every
 * document in a saved fetch answer, with the core library's seal_verify().
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "lianban.h"
#include "lianctl.h"

struct sealcmd_set {
	const char	*sc_file;	/* the operand */
	const char	*sc_root;	/* --seal-root */
};

/* What the results of one answer came to. */
struct sealcmd_count {
	uint32_t	sn_ok, sn_bad, sn_skip;
};

static const struct optdef sealcmd_opts[] = {
	{ "seal-root", "PEM", OPT_STR, offsetof(struct sealcmd_set, sc_root),
	  .od_help = "trusted seal root certificates\n(default DIR/seal-root.pem)" },
	{ "json", NULL, OPT_GLOBAL, 0, .od_help = "print the verdicts as JSON" },
	{ "quiet", NULL, OPT_GLOBAL, 0, .od_help = "print only the documents that fail" },
	{ .od_name = NULL }
};

/*
 * Checks one "ok" result of a fetch answer: the document object is its
 * sealed bytes, and the receipt proves those bytes, for this item and
 * this exchange.  exch may be NULL when the answer names no exchange.
 */
static int
sealcmd_check(const msgpack_object *res, const char *item, const uint8_t *exch,
    msgpack_zone *z, X509_STORE *roots, struct seal_verdict *v, char *err, size_t errlen)
{
	const msgpack_object	*doc, *seal;
	const uint8_t		*db, *rb;
	uint8_t			*packed = NULL, *rbuf = NULL;
	size_t			 dlen, rlen, plen;
	char			*id;
	int			 ret = -1;
	/* A verification's result holds a sealed attestation in place of a document. */
	bool			 att = mpk_get(res, "attestation_bytes") != NULL;
	const char		*what = att ? "attestation" : "document";

	memset(v, 0, sizeof(*v));
	if (mpk_get_bytes(res, att ? "attestation_bytes" : "document_bytes", z, &db,
	    &dlen) != 0) {
		snprintf(err, errlen, "the result has no %s_bytes", what);
		goto done;
	}
	if (!mpk_is_canonical(db, dlen)) {
		snprintf(err, errlen, "%s_bytes is not canonical msgpack", what);
		goto done;
	}
	if ((doc = mpk_get(res, what)) == NULL) {
		snprintf(err, errlen, "the result has no %s", what);
		goto done;
	}
	if (mpk_pack_alloc(doc, &packed, &plen) != 0 || plen != dlen ||
	    memcmp(packed, db, dlen) != 0) {
		snprintf(err, errlen, "the %s differs from %s_bytes, the bytes that were sealed",
		    what, what);
		goto done;
	}
	if (att && (!mpk_str_eq(mpk_get(doc, "type"), "attestation") ||
	    !mpk_str_eq(mpk_get(doc, "item"), item))) {
		snprintf(err, errlen, "the attestation is not one of item \"%s\"", item);
		goto done;
	}
	/* A receipt as a map (JSON answers) or as its bytes (bin or base64url). */
	if ((seal = mpk_get(res, "seal")) == NULL) {
		snprintf(err, errlen, "the result has no seal receipt");
		goto done;
	}
	if (seal->type == MSGPACK_OBJECT_MAP) {
		if (mpk_pack_alloc(seal, &rbuf, &rlen) != 0) {
			snprintf(err, errlen, "the seal receipt cannot be encoded");
			goto done;
		}
		rb = rbuf;
	} else if (mpk_obj_bytes(seal, z, &rb, &rlen) != 0) {
		snprintf(err, errlen, "the seal receipt is neither a map nor bytes");
		goto done;
	}
	if (seal_verify(rb, rlen, db, dlen, roots, v, err, errlen) != 0)
		goto done;
	if (strcmp(v->sv_item, item) != 0) {
		snprintf(err, errlen, "the seal is for item \"%s\", not \"%s\"", v->sv_item, item);
		goto done;
	}
	if (exch != NULL && memcmp(v->sv_exch, exch, 16) != 0) {
		/* Named as the API names exchanges: base64url. */
		id = b64url_encode(v->sv_exch, 16);
		snprintf(err, errlen, "the seal was made for another exchange (%s)",
		    id != NULL ? id : "?");
		free(id);
		goto done;
	}
	ret = 0;
done:
	ERR_clear_error();
	free(packed);
	free(rbuf);
	return ret;
}

/*
 * Prints a seal that verified, with each check that passed, in the order
 * of docs/contract.md §6.
 */
static void
sealcmd_print_ok(const char *label, const struct seal_verdict *v, const char *when,
    const char *what)
{
	printf("%s: seal ok — issuer %s, seal %s, %s, batch leaf %llu of %llu, sealed %s, "
	    "signer %s\n", label, v->sv_iss, v->sv_seal, v->sv_alg,
	    (unsigned long long)v->sv_index, (unsigned long long)v->sv_size, when,
	    v->sv_signer);
	printf("  %s digest  %s of %s_bytes equals the claim's doc\n", what, v->sv_hash, what);
	printf("  Merkle path      leaf %llu of %llu (%s) leads to the batch root\n",
	    (unsigned long long)v->sv_index, (unsigned long long)v->sv_size, v->sv_hash);
	printf("  batch signature  %s, verified with the seal certificate named by kid\n",
	    v->sv_alg);
	printf("  certificate      chains to the seal root %s\n", v->sv_root);
	printf("  validity         certificate valid at iat %llu (%s)\n",
	    (unsigned long long)v->sv_iat, when);
}

/*
 * The verdict on one result of item for subj: printed (label names it), or
 * appended to jout with --json; -1 only when jout cannot take the verdict.
 */
static int
sealcmd_result(const struct ctl *ctl, const msgpack_object *res, const char *item,
    const char *subj, const char *label, const uint8_t *exch, msgpack_zone *z,
    X509_STORE *roots, json_t *jout, struct sealcmd_count *n)
{
	struct seal_verdict	 v;
	char			 status[64], msg[1024], err[CTL_ERR_MAX], when[64];
	json_t			*jv = NULL;

	if (mpk_get_str(res, "status", status, sizeof(status)) != 0)
		snprintf(status, sizeof(status), "no status");
	if (strcmp(status, "ok") != 0) {
		n->sn_skip++;
		if (mpk_get_str(res, "message", msg, sizeof(msg)) != 0)
			msg[0] = '\0';
		if (jout != NULL)
			jv = json_pack("{s:s, s:s, s:s, s:s}", "subject", subj, "item", item,
			    "verdict", "not fetched", "status", status);
		else if (!ctl->c_quiet)
			printf("%s: not fetched — %s%s%s\n", label, status,
			    msg[0] != '\0' ? ": " : "", msg);
	} else if (sealcmd_check(res, item, exch, z, roots, &v, err, sizeof(err)) != 0) {
		n->sn_bad++;
		if (jout != NULL)
			jv = json_pack("{s:s, s:s, s:s, s:s}", "subject", subj, "item", item,
			    "verdict", "invalid", "error", err);
		else
			printf("%s: SEAL INVALID — %s\n", label, err);
	} else {
		n->sn_ok++;
		ctl_fmt_time(v.sv_iat, when, sizeof(when));
		if (jout != NULL)
			jv = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, "
			    "s:s, s:s}", "subject", subj, "item", item, "verdict", "ok",
			    "issuer", v.sv_iss, "seal", v.sv_seal, "alg", v.sv_alg, "hash",
			    v.sv_hash, "index", (json_int_t)v.sv_index, "size",
			    (json_int_t)v.sv_size, "iat", (json_int_t)v.sv_iat, "sealed", when,
			    "signer", v.sv_signer, "seal_root", v.sv_root);
		else if (!ctl->c_quiet)
			sealcmd_print_ok(label, &v, when, mpk_get(res, "attestation_bytes") != NULL ?
			    "attestation" : "document");
	}
	if (jout != NULL && (jv == NULL || json_array_append_new(jout, jv) != 0)) {
		ctl_err("a result holds text that is not valid UTF-8");
		return -1;
	}
	return 0;
}

/* Whether the results name more than one subject: then every line names its subject. */
static bool
sealcmd_multi(const msgpack_object *results)
{
	char		first[LB_SUBJECT_MAX] = "", subj[LB_SUBJECT_MAX];
	uint32_t	i;

	for (i = 0; i < results->via.array.size; i++) {
		if (mpk_get_str(&results->via.array.ptr[i], "subject", subj, sizeof(subj)) != 0)
			continue;
		if (first[0] == '\0')
			memcpy(first, subj, sizeof(first));
		else if (strcmp(first, subj) != 0)
			return true;
	}
	return false;
}

static int
sealcmd_run(struct ctl *ctl, struct args *ar)
{
	struct sealcmd_set	 s = { NULL, NULL };
	struct sealcmd_count	 n = { 0, 0, 0 };
	const char		*rootpath;
	char			 rootbuf[PATH_MAX], label[LB_ITEM_MAX + LB_SUBJECT_MAX + 64];
	char			 item[LB_ITEM_MAX], subj[LB_SUBJECT_MAX];
	X509_STORE		*roots = NULL;
	msgpack_zone		 z;
	msgpack_object		 resp;
	const msgpack_object	*results, *res, *o;
	const uint8_t		*exch = NULL;
	size_t			 exlen;
	json_t			*jout = NULL;
	uint32_t		 i;
	bool			 multi;
	int			 ret;

	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	if ((rootpath = ctl_path(ctl, s.sc_root, "seal-root.pem", rootbuf,
	    sizeof(rootbuf))) == NULL)
		return CTL_USAGE;
	ret = CTL_FAIL;
	msgpack_zone_init(&z, 8192);
	if ((roots = X509_STORE_new()) == NULL || X509_STORE_load_file(roots, rootpath) != 1) {
		ERR_clear_error();
		ctl_err("cannot load the seal root certificate %s (give --seal-root PEM or "
		    "--certs DIR)", rootpath);
		goto done;
	}
	if (ctl_load_object(s.sc_file, &z, &resp) != 0)
		goto done;
	if ((results = mpk_get(&resp, "results")) == NULL ||
	    results->type != MSGPACK_OBJECT_ARRAY) {
		ctl_err("%s: not a fetch answer (it has no \"results\" list)", s.sc_file);
		goto done;
	}
	if (mpk_get(&resp, "exchange") != NULL &&
	    (mpk_get_bytes(&resp, "exchange", &z, &exch, &exlen) != 0 || exlen != 16)) {
		ctl_err("%s: \"exchange\" is not a 16-byte id", s.sc_file);
		goto done;
	}
	multi = sealcmd_multi(results);
	if (ctl->c_json && (jout = json_array()) == NULL) {
		ctl_err("out of memory");
		goto done;
	}
	for (i = 0; i < results->via.array.size; i++) {
		res = &results->via.array.ptr[i];
		if (mpk_get_str(res, "item", item, sizeof(item)) != 0)
			snprintf(item, sizeof(item), "result %u", i);
		if (mpk_get_str(res, "subject", subj, sizeof(subj)) != 0)
			subj[0] = '\0';
		if (multi)
			snprintf(label, sizeof(label), "%s (subject %s)", item, subj);
		else
			snprintf(label, sizeof(label), "%s", item);
		if ((o = mpk_get(res, "attestation")) != NULL &&
		    (o = mpk_get(o, "result")) != NULL && o->type == MSGPACK_OBJECT_BOOLEAN)
			snprintf(label + strlen(label), sizeof(label) - strlen(label),
			    " [attestation: %s]", o->via.boolean ? "true" : "false");
		if (sealcmd_result(ctl, res, item, subj, label, exch, &z, roots, jout, &n) != 0)
			goto done;
	}
	if (jout != NULL) {
		/* ctl_json_print() releases jout, printed or not. */
		if (ctl_json_print(jout) != 0) {
			jout = NULL;
			goto done;
		}
		jout = NULL;
	}
	if (n.sn_bad > 0)
		ctl_err("%u of %u sealed documents failed verification", n.sn_bad,
		    n.sn_bad + n.sn_ok);
	else if (n.sn_ok == 0)
		ctl_err("%s holds no sealed document to verify (%u results, none with "
		    "status ok)", s.sc_file, n.sn_skip);
	else
		ret = CTL_OK;
done:
	json_decref(jout);
	X509_STORE_free(roots);
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_seal_verify = {
	.cm_name = "seal verify",
	.cm_operand = "FILE",
	.cm_operand_off = offsetof(struct sealcmd_set, sc_file),
	.cm_summary = "verify the seals of a saved fetch answer, offline",
	.cm_synopsis = "[global options] seal verify FILE [--seal-root PEM]",
	.cm_about =
	"Verifies, offline, the seal of every document in a saved fetch answer (JSON\n"
	"as written by \"fetch --out\", or msgpack); FILE \"-\" reads standard input.\n"
	"A document passes when it equals its sealed bytes, the seal claim holds its\n"
	"digest and names its item and exchange, the Merkle path leads to the signed\n"
	"batch root, the batch signature verifies, and the seal certificate chains to\n"
	"the seal root and was valid at the sealing time (iat); each check is listed.\n"
	"A saved verification answer (\"fetch --predicates\") is checked the same way,\n"
	"its attestations in place of documents.\n",
	.cm_notes = "Exit status 1 when any seal fails, or when FILE holds no sealed document.\n",
	.cm_opts = sealcmd_opts,
	.cm_ident = IDENT_NONE,
	.cm_run = sealcmd_run
};
