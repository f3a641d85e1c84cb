/*
 * lianctl_consent.c - consent issue: sign a consent token as a face-auth
 * authority (demos and tests); consent revoke: withdraw a consent token, or
 * every consent a citizen gave for a bundle (POST /v1/revocations).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "lianban.h"
#include "lianctl.h"

/*
 * Loads an authority's key and certificate, checks that they belong
 * together and gives the key id.  On success the caller frees both.
 */
static int
authority_load(const char *keypath, const char *certpath, EVP_PKEY **key, X509 **cert,
    uint8_t kid[32])
{
	char	err[CTL_ERR_MAX];
	int	ret = -1;

	*key = NULL;
	*cert = NULL;
	if (key_load(keypath, key, err, sizeof(err)) != 0 ||
	    cert_load(certpath, cert, err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		goto done;
	}
	if (X509_check_private_key(*cert, *key) != 1) {
		ctl_err("authority key %s does not belong to certificate %s", keypath, certpath);
		goto done;
	}
	if (key_id_cert(*cert, kid) != 0) {
		ctl_err("%s: cannot compute the key id", certpath);
		goto done;
	}
	ret = 0;
done:
	ERR_clear_error();
	if (ret != 0) {
		EVP_PKEY_free(*key);
		X509_free(*cert);
		*key = NULL;
		*cert = NULL;
	}
	return ret;
}

/*
 * consent issue
 */
static const char *const issue_rels[] = { "self", "guardian", "legal_rep", "agent", NULL };
#define ISSUE_REL_SELF		0

struct issue_set {
	const char	*is_key, *is_cert, *is_sub, *is_azp, *is_bundle, *is_items;
	const char	*is_aud, *is_act, *is_amr, *is_iss;
	int		 is_rel;	/* in issue_rels */
	int64_t		 is_liveness, is_match, is_ttl;
	int64_t		 is_iat, is_exp;	/* INT64_MIN when not given */
	struct ctl_jti	 is_jti;
};

#define IS(m)	offsetof(struct issue_set, m)
static const struct optdef issue_opts[] = {
	{ "authority", "KEY", OPT_STR, IS(is_key), .od_required = true,
	  .od_help = "the authority's private key (PEM, mode 600; P-256 for\n"
	  "ES256, Ed25519 for EdDSA, or SM2)" },
	{ "authority-cert", "PEM", OPT_STR, IS(is_cert), .od_required = true,
	  .od_help = "its certificate: iss is its CN, kid its key id" },
	{ "sub", "ID", OPT_STR, IS(is_sub), .od_required = true,
	  .od_help = "the citizen whose data is fetched" },
	{ "azp", "CONSUMER", OPT_STR, IS(is_azp), .od_required = true,
	  .od_help = "the consumer allowed to use the token" },
	{ "bundle", "BUNDLE", OPT_STR, IS(is_bundle), .od_required = true,
	  .od_help = "bundle id, e.g. newborn" },
	{ "items", "LIST", OPT_STR, IS(is_items), .od_required = true,
	  .od_help = "comma-separated item types the citizen agrees to share" },
	{ "aud", "ID", OPT_STR, IS(is_aud),
	  .od_help = "gateway id (default " CTL_DEFAULT_AUD ")" },
	{ "act", "ID", OPT_STR, IS(is_act),
	  .od_help = "whose face was verified (default: the --sub)" },
	{ "rel", "self|guardian|legal_rep|agent", OPT_CHOICE, IS(is_rel), .od_choices = issue_rels,
	  .od_help = "relation of act to sub (default self)" },
	{ "amr", "LIST", OPT_STR, IS(is_amr),
	  .od_help = "comma-separated authentication methods (default face)" },
	{ "liveness", "N", OPT_INT, IS(is_liveness), INT32_MIN, INT32_MAX,
	  .od_help = "liveness score x1000 (default 990)" },
	{ "match", "N", OPT_INT, IS(is_match), INT32_MIN, INT32_MAX,
	  .od_help = "face match score x1000 (default 985)" },
	{ "ttl", "SECONDS", OPT_INT, IS(is_ttl), INT32_MIN, INT32_MAX,
	  .od_help = "lifetime: exp = iat + ttl (default 300)" },
	{ "iat", "UNIX", OPT_INT, IS(is_iat), INT64_MIN / 2, INT64_MAX / 2,
	  .od_help = "issued at (default now)" },
	{ "exp", "UNIX", OPT_INT, IS(is_exp), INT64_MIN / 2, INT64_MAX / 2,
	  .od_help = "expires at (default iat + ttl)" },
	{ "jti", "JTI", OPT_FUNC, IS(is_jti), .od_func = ctl_opt_jti,
	  .od_help = "token id, 16 bytes as 22 base64url characters or 32 hex digits "
	  "(default 16 random bytes)" },
	{ "iss", "ID", OPT_STR, IS(is_iss),
	  .od_help = "issuer id (default the certificate's CN)" },
	{ "json", NULL, OPT_GLOBAL, 0,
	  .od_help = "print {\"token\": ..., \"claims\": {...}} instead" },
	{ .od_name = NULL }
};
#undef IS

/* The claims of the token (docs/contract.md §5), in m. */
static void
issue_claims(const struct issue_set *s, const char *iss, const uint8_t jti[16],
    msgpack_object oitems, msgpack_object oamr, msgpack_zone *z, struct mpk_map *m)
{
	mpk_map_init(m, z, 14);
	mpk_map_put(m, "iss", mpk_str(iss));
	mpk_map_put(m, "aud", mpk_str(s->is_aud));
	mpk_map_put(m, "sub", mpk_str(s->is_sub));
	mpk_map_put(m, "act", mpk_str(s->is_act != NULL ? s->is_act : s->is_sub));
	mpk_map_put(m, "rel", mpk_str(issue_rels[s->is_rel]));
	mpk_map_put(m, "azp", mpk_str(s->is_azp));
	mpk_map_put(m, "bundle", mpk_str(s->is_bundle));
	mpk_map_put(m, "items", oitems);
	mpk_map_put(m, "amr", oamr);
	mpk_map_put(m, "liveness", mpk_int(s->is_liveness));
	mpk_map_put(m, "match", mpk_int(s->is_match));
	mpk_map_put(m, "iat", mpk_int(s->is_iat));
	mpk_map_put(m, "exp", mpk_int(s->is_exp));
	mpk_map_put(m, "jti", mpk_bin(jti, 16));
}

static int
issue_check(const void *set, const struct args *ar)
{
	const struct issue_set	*s = set;

	(void)ar;
	if (s->is_rel != ISSUE_REL_SELF && s->is_act == NULL) {
		ctl_err("--rel %s needs --act, the id of the person whose face was verified",
		    issue_rels[s->is_rel]);
		return -1;
	}
	return 0;
}

static int
issue_run(struct ctl *ctl, struct args *ar)
{
	struct issue_set	 s = {
		.is_aud = CTL_DEFAULT_AUD, .is_amr = "face", .is_liveness = 990,
		.is_match = 985, .is_ttl = 300, .is_iat = INT64_MIN, .is_exp = INT64_MIN
	};
	const char		*iss;
	uint8_t			 jti[16], kid[32];
	char			 cn[256], *tok = NULL, *js = NULL;
	EVP_PKEY		*key = NULL;
	X509			*cert = NULL;
	msgpack_zone		 z;
	msgpack_sbuffer		 payload, env;
	msgpack_object		 oitems, oamr;
	struct mpk_map		 m, out;
	int			 ret;

	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	ret = CTL_FAIL;
	msgpack_zone_init(&z, 2048);
	msgpack_sbuffer_init(&payload);
	msgpack_sbuffer_init(&env);
	if (ctl_list_split(&z, s.is_items, &oitems) != 0 ||
	    ctl_list_split(&z, s.is_amr, &oamr) != 0) {
		ctl_err("--items and --amr are comma-separated lists without empty elements");
		ret = CTL_USAGE;
		goto done;
	}
	if (s.is_iat == INT64_MIN)
		s.is_iat = (int64_t)time(NULL);
	if (s.is_exp == INT64_MIN)
		s.is_exp = s.is_iat + s.is_ttl;
	if (s.is_jti.jt_given)
		memcpy(jti, s.is_jti.jt_id, sizeof(jti));
	else if (RAND_bytes(jti, sizeof(jti)) != 1) {
		ctl_err("cannot draw a random jti");
		goto done;
	}
	if (authority_load(s.is_key, s.is_cert, &key, &cert, kid) != 0)
		goto done;
	if (envelope_alg_of_key(key) == LB_ALG_NONE) {
		ctl_err("%s: an authority key is P-256 (ES256), Ed25519 (EdDSA) or SM2", s.is_key);
		goto done;
	}
	if ((iss = s.is_iss) == NULL) {
		if (cert_subject_field(cert, NID_commonName, cn, sizeof(cn)) != 0) {
			ctl_err("%s: the certificate has no usable CN to name the issuer "
			    "(give --iss)", s.is_cert);
			goto done;
		}
		iss = cn;
	}
	issue_claims(&s, iss, jti, oitems, oamr, &z, &m);
	if (mpk_pack(&m.mm_obj, &payload, false) != 0) {
		ctl_err("cannot encode the consent claims");
		goto done;
	}
	if (envelope_sign(key, kid, "consent", NULL, 0, payload.data, payload.size, &env) != 0) {
		ERR_clear_error();
		ctl_err("signing the consent token with %s failed", s.is_key);
		goto done;
	}
	if ((tok = b64url_encode(env.data, env.size)) == NULL) {
		ctl_err("out of memory");
		goto done;
	}
	if (ctl->c_json) {
		mpk_map_init(&out, &z, 2);
		mpk_map_put(&out, "token", mpk_str(tok));
		mpk_map_put(&out, "claims", m.mm_obj);
		if ((js = mpk_to_json(&out.mm_obj, true)) == NULL) {
			ctl_err("the claims hold text that is not valid UTF-8");
			goto done;
		}
		printf("%s\n", js);
	} else
		printf("%s\n", tok);
	ret = CTL_OK;
done:
	free(js);
	free(tok);
	EVP_PKEY_free(key);
	X509_free(cert);
	msgpack_sbuffer_destroy(&payload);
	msgpack_sbuffer_destroy(&env);
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_consent_issue = {
	.cm_name = "consent issue",
	.cm_summary = "sign a consent token as a face-auth authority (demos, tests)",
	.cm_synopsis = "consent issue --authority KEY --authority-cert PEM --sub ID\n"
	"           --azp CONSUMER --bundle BUNDLE --items ITEM[,ITEM...] [options]",
	.cm_about =
	"Plays the face-auth authority (demos and tests): signs a consent token\n"
	"(docs/contract.md §5) and prints it as base64url on standard output.\n",
	.cm_opts = issue_opts,
	.cm_check = issue_check,
	.cm_ident = IDENT_NONE,
	.cm_run = issue_run
};

/*
 * consent revoke
 */
struct revoke_set {
	struct ctl_jti	 rv_jti;
	const char	*rv_subject, *rv_bundle;
	const char	*rv_key, *rv_cert;	/* the authority that signs; NULL: an admin's */
};

#define RV(m)	offsetof(struct revoke_set, m)
static const struct optdef revoke_opts[] = {
	{ "jti", "JTI", OPT_FUNC, RV(rv_jti), .od_func = ctl_opt_jti,
	  .od_help = "the token to revoke, by its jti (base64url as \"consent issue "
	  "--json\" prints it, or 32 hex digits)" },
	{ "subject", "ID", OPT_STR, RV(rv_subject),
	  .od_help = "with --bundle: every token the citizen gave for the bundle" },
	{ "bundle", "BUNDLE", OPT_STR, RV(rv_bundle),
	  .od_help = "the bundle of --subject" },
	{ "authority", "KEY", OPT_STR, RV(rv_key),
	  .od_help = "sign the revocation with this face-auth authority's key" },
	{ "authority-cert", "PEM", OPT_STR, RV(rv_cert),
	  .od_help = "its certificate" },
	{ .od_name = NULL }
};
#undef RV

/* The request body: the fields, signed by the authority when one is given. */
static int
revoke_body(const struct revoke_set *s, msgpack_zone *z, msgpack_sbuffer *body)
{
	EVP_PKEY	*key = NULL;
	X509		*cert = NULL;
	uint8_t		 kid[32];
	msgpack_sbuffer	 fields, env;
	struct mpk_map	 m, outer;
	int		 ret = -1;

	msgpack_sbuffer_init(&fields);
	msgpack_sbuffer_init(&env);
	mpk_map_init(&m, z, 3);
	if (s->rv_jti.jt_given)
		mpk_map_put(&m, "jti", mpk_bin(s->rv_jti.jt_id, sizeof(s->rv_jti.jt_id)));
	else {
		mpk_map_put(&m, "subject", mpk_str(s->rv_subject));
		mpk_map_put(&m, "bundle", mpk_str(s->rv_bundle));
	}
	if (s->rv_key != NULL) {
		if (authority_load(s->rv_key, s->rv_cert, &key, &cert, kid) != 0)
			goto done;
		mpk_map_put(&m, "iat", mpk_int((int64_t)time(NULL)));
		if (mpk_pack(&m.mm_obj, &fields, false) != 0 ||
		    envelope_sign(key, kid, "revocation", NULL, 0, fields.data, fields.size,
		    &env) != 0) {
			ERR_clear_error();
			ctl_err("signing the revocation with %s failed", s->rv_key);
			goto done;
		}
		mpk_map_init(&outer, z, 1);
		mpk_map_put(&outer, "revocation", mpk_bin(env.data, env.size));
		m = outer;
	}
	if (mpk_pack(&m.mm_obj, body, false) != 0) {
		ctl_err("cannot encode the revocation");
		goto done;
	}
	ret = 0;
done:
	EVP_PKEY_free(key);
	X509_free(cert);
	msgpack_sbuffer_destroy(&fields);
	msgpack_sbuffer_destroy(&env);
	return ret;
}

static int
revoke_check(const void *set, const struct args *ar)
{
	const struct revoke_set	*s = set;

	if (s->rv_jti.jt_given == (s->rv_subject != NULL || s->rv_bundle != NULL) ||
	    (!s->rv_jti.jt_given && (s->rv_subject == NULL || s->rv_bundle == NULL))) {
		ctl_err("consent revoke takes --jti, or --subject with --bundle");
		ctl_usage_hint(ar);
		return -1;
	}
	if ((s->rv_key == NULL) != (s->rv_cert == NULL)) {
		ctl_err("--authority and --authority-cert go together");
		return -1;
	}
	return 0;
}

static int
revoke_run(struct ctl *ctl, struct args *ar)
{
	struct revoke_set	s;
	msgpack_zone		z;
	msgpack_sbuffer		body;
	int			ret;

	memset(&s, 0, sizeof(s));
	if (ctl_args(ctl, ar, &s, &ret) != 0)
		return ret;
	msgpack_zone_init(&z, 1024);
	msgpack_sbuffer_init(&body);
	ret = CTL_FAIL;
	if (revoke_body(&s, &z, &body) == 0)
		ret = http_show(ctl, &(struct http_req){ .hq_method = "POST",
		    .hq_path = "/v1/revocations", .hq_body = body.data, .hq_len = body.size });
	msgpack_sbuffer_destroy(&body);
	msgpack_zone_destroy(&z);
	return ret;
}

const struct command cmd_consent_revoke = {
	.cm_name = "consent revoke",
	.cm_summary = "revoke a consent token, or a citizen's consent to a bundle",
	.cm_synopsis = "consent revoke --jti JTI | --subject ID --bundle BUNDLE\n"
	"           [--authority KEY --authority-cert PEM]",
	.cm_about =
	"Revokes consent at the gateway (POST /v1/revocations).  --jti names one\n"
	"token by its jti (base64url, as the API and \"consent issue --json\" show\n"
	"it, or 32 hex digits); --subject with --bundle revokes every\n"
	"token the citizen gave for the bundle up to now.  A later exchange with a\n"
	"revoked token is refused with consent_revoked.\n"
	"\n"
	"Without --authority the request is an admin's (--cert/--key of OU=admin).\n"
	"With --authority and --authority-cert the revocation is signed by that\n"
	"face-auth authority (an envelope of typ \"revocation\") and may be sent\n"
	"with any client identity.\n",
	.cm_opts = revoke_opts,
	.cm_check = revoke_check,
	.cm_ident = IDENT_NEEDED,
	.cm_run = revoke_run
};
