/*
 * lianctl_consent.c - consent revoke: withdraw a consent token, or every
 * consent a citizen gave for a bundle (POST /v1/revocations).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "lianban.h"
#include "lianctl.h"

const char usage_consent_revoke[] =
"usage: lianctl consent revoke --jti HEX | --subject ID --bundle BUNDLE\n"
"           [--authority KEY --authority-cert PEM]\n"
"\n"
"Revokes consent at the gateway (POST /v1/revocations).  --jti names one\n"
"token by its jti (32 hex digits); --subject with --bundle revokes every\n"
"token the citizen gave for the bundle up to now.  A later exchange with a\n"
"revoked token is refused with consent_revoked.\n"
"\n"
"Without --authority the request is an admin's (--cert/--key of OU=admin).\n"
"With --authority and --authority-cert the revocation is signed by that\n"
"face-auth authority (an envelope of typ \"revocation\") and may be sent\n"
"with any client identity.\n";

int
cmd_consent_revoke(struct ctl *ctl, struct args *ar)
{
	static const struct optdef defs[] = {
		{ "jti",		true,	O_JTI },
		{ "subject",		true,	O_SUBJECT },
		{ "bundle",		true,	O_BUNDLE },
		{ "authority",		true,	O_AUTHORITY },
		{ "authority-cert",	true,	O_AUTHORITY_CERT },
		{ NULL,			false,	O_NONE }
	};
	const char	*subject = NULL, *bundle = NULL, *keypath = NULL, *certpath = NULL;
	const char	*val;
	int		 nextopt, optrc;
	enum opt	 id;
	uint8_t		 jti[16], kid[32];
	bool		 has_jti = false;
	char		 err[CTL_ERR_MAX], *s = NULL;
	EVP_PKEY	*key = NULL;
	X509		*cert = NULL;
	msgpack_zone	 z;
	msgpack_sbuffer	 fields, env, body;
	struct mpk_map	 m, outer;
	struct http_resp r;
	int		 ret = CTL_FAIL;

	memset(&r, 0, sizeof(r));
	while ((nextopt = cmd_opt(ar, defs, usage_consent_revoke, &id, &val, &optrc)) > 0) {
		switch (id) {
		case O_JTI:
			if (hex_decode(val, strlen(val), jti, sizeof(jti)) != 0) {
				ctl_err("--jti needs 32 hex digits (16 bytes), not \"%s\"", val);
				return CTL_USAGE;
			}
			has_jti = true;
			break;
		case O_SUBJECT:		subject = val; break;
		case O_BUNDLE:		bundle = val; break;
		case O_AUTHORITY:	keypath = val; break;
		case O_AUTHORITY_CERT:	certpath = val; break;
		default:
			if (ctl_global(ctl, id, val) != 0)
				return CTL_USAGE;
			break;
		}
	}
	if (nextopt < 0)
		return optrc;
	if (has_jti == (subject != NULL || bundle != NULL) ||
	    (!has_jti && (subject == NULL || bundle == NULL))) {
		ctl_err("consent revoke takes --jti, or --subject with --bundle");
		usage_hint(ar);
		return CTL_USAGE;
	}
	if ((keypath == NULL) != (certpath == NULL)) {
		ctl_err("--authority and --authority-cert go together");
		return CTL_USAGE;
	}
	if (ctl_need_identity(ctl, "consent revoke") != 0)
		return CTL_USAGE;

	msgpack_zone_init(&z, 1024);
	msgpack_sbuffer_init(&fields);
	msgpack_sbuffer_init(&env);
	msgpack_sbuffer_init(&body);
	mpk_map_init(&m, &z, 3);
	if (has_jti)
		mpk_map_put(&m, "jti", mpk_bin(jti, sizeof(jti)));
	else {
		mpk_map_put(&m, "subject", mpk_str(subject));
		mpk_map_put(&m, "bundle", mpk_str(bundle));
	}
	if (keypath != NULL) {
		if (key_load(keypath, &key, err, sizeof(err)) != 0 ||
		    cert_load(certpath, &cert, err, sizeof(err)) != 0) {
			ctl_err("%s", err);
			goto done;
		}
		if (X509_check_private_key(cert, key) != 1 || key_id_cert(cert, kid) != 0) {
			ERR_clear_error();
			ctl_err("authority key %s does not belong to certificate %s", keypath,
			    certpath);
			goto done;
		}
		mpk_map_put(&m, "iat", mpk_int((int64_t)time(NULL)));
		if (mpk_pack(&m.mm_obj, &fields, false) != 0 ||
		    envelope_sign(key, kid, "revocation", NULL, 0, fields.data, fields.size,
		    &env) != 0) {
			ERR_clear_error();
			ctl_err("signing the revocation with %s failed", keypath);
			goto done;
		}
		mpk_map_init(&outer, &z, 1);
		mpk_map_put(&outer, "revocation", mpk_bin(env.data, env.size));
		m = outer;
	}
	if (mpk_pack(&m.mm_obj, &body, false) != 0) {
		ctl_err("cannot encode the revocation");
		goto done;
	}
	if (http_request(ctl, "POST", "/v1/revocations", "application/json",
	    "application/msgpack", body.data, body.size, &r, err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		goto done;
	}
	if (r.hr_status >= 300) {
		resp_refused(&r);
		goto done;
	}
	if ((s = resp_pretty(&r, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		goto done;
	}
	if (!ctl->c_quiet)
		printf("%s\n", s);
	ret = CTL_OK;
done:
	free(s);
	http_resp_clear(&r);
	EVP_PKEY_free(key);
	X509_free(cert);
	msgpack_sbuffer_destroy(&fields);
	msgpack_sbuffer_destroy(&env);
	msgpack_sbuffer_destroy(&body);
	msgpack_zone_destroy(&z);
	return ret;
}
