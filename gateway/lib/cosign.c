/*
 * cosign.c - what the nodes of a cluster sign about each other's journals
 * (docs/audit.md, "A cluster's journals").
 *
 * Each node's checkpoint names its origin GATEWAY_ID/NODE_ID.  A node that
 * has checked a peer's checkpoint (its signature, its origin, and that the
 * tree only grew since the last one it saw) signs a cosignature: an
 * envelope of typ "cosignature" whose payload repeats the checkpoint's
 * origin, size and root, says when the witness signed (t_ms) and names the
 * witness (its own origin).  The checks of both envelopes live here so that
 * the daemon's witness and lianctl's cluster verification apply the same
 * rules.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "lianban.h"

/*
 * Parses buf as an envelope of typ, checks it is signed by cert's key and
 * that the signature verifies; env lives in z.
 */
static int
cosign_envelope(const uint8_t *buf, size_t len, const char *typ, X509 *cert, msgpack_zone *z,
    struct envelope *env, char *err, size_t errlen)
{
	const char	*why;
	uint8_t		 kid[32];

	if (envelope_parse(buf, len, z, typ, env, &why) != 0) {
		snprintf(err, errlen, "the %s envelope is malformed: %s", typ, why);
		return -1;
	}
	if (key_id_cert(cert, kid) != 0 || memcmp(kid, env->env_kid, 32) != 0) {
		snprintf(err, errlen, "the %s is signed by another key than the checkpoint "
		    "certificate's", typ);
		return -1;
	}
	if (envelope_verify(env, X509_get0_pubkey(cert)) != 0) {
		ERR_clear_error();
		snprintf(err, errlen, "the %s's signature does not verify with the checkpoint "
		    "certificate", typ);
		return -1;
	}
	return 0;
}

/* origin, size, root and t_ms of a checkpoint or cosignature payload. */
static int
cosign_fields(const msgpack_object *p, msgpack_zone *z, char *origin, uint64_t *size,
    uint8_t root[32], uint64_t *t_ms)
{
	const uint8_t	*r;
	size_t		 rlen;

	if (mpk_get_str(p, "origin", origin, LB_ORIGIN_MAX) != 0 || origin[0] == '\0' ||
	    mpk_get_u64(p, "size", size) != 0 || mpk_get_u64(p, "t_ms", t_ms) != 0 ||
	    mpk_get_bytes(p, "root", z, &r, &rlen) != 0 || rlen != 32)
		return -1;
	memcpy(root, r, 32);
	return 0;
}

int
cosign_ckpt_check(const uint8_t *env, size_t len, X509 *cert, struct ckpt_view *out,
    char *err, size_t errlen)
{
	msgpack_zone	 z;
	struct envelope	 e;
	int		 ret = -1;

	memset(out, 0, sizeof(*out));
	msgpack_zone_init(&z, 2048);
	if (cosign_envelope(env, len, "checkpoint", cert, &z, &e, err, errlen) != 0)
		goto done;
	if (e.env_claims.via.map.size != 4 || cosign_fields(&e.env_claims, &z, out->cv_origin,
	    &out->cv_size, out->cv_root, &out->cv_t_ms) != 0) {
		snprintf(err, errlen, "the checkpoint's payload is not {origin, size, root, t_ms}");
		goto done;
	}
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

int
cosign_make(EVP_PKEY *key, const uint8_t kid[32], const struct cosig *co, msgpack_sbuffer *out)
{
	msgpack_zone	 z;
	msgpack_sbuffer	 payload;
	struct mpk_map	 m;
	int		 ret = -1;

	msgpack_zone_init(&z, 512);
	msgpack_sbuffer_init(&payload);
	if (co->co_origin[0] == '\0' || co->co_witness[0] == '\0')
		goto done;
	mpk_map_init(&m, &z, 5);
	mpk_map_put(&m, "origin", mpk_str(co->co_origin));
	mpk_map_put(&m, "size", mpk_uint(co->co_size));
	mpk_map_put(&m, "root", mpk_bin(co->co_root, 32));
	mpk_map_put(&m, "t_ms", mpk_uint(co->co_t_ms));
	mpk_map_put(&m, "witness", mpk_str(co->co_witness));
	if (mpk_pack(&m.mm_obj, &payload, false) != 0 ||
	    envelope_sign(key, kid, COSIGN_TYP, NULL, 0, payload.data, payload.size, out) != 0)
		goto done;
	ret = 0;
done:
	msgpack_sbuffer_destroy(&payload);
	msgpack_zone_destroy(&z);
	return ret;
}

int
cosign_check(const uint8_t *env, size_t len, X509 *cert, struct cosig *out, char *err,
    size_t errlen)
{
	msgpack_zone	 z;
	struct envelope	 e;
	int		 ret = -1;

	memset(out, 0, sizeof(*out));
	msgpack_zone_init(&z, 2048);
	if (cosign_envelope(env, len, COSIGN_TYP, cert, &z, &e, err, errlen) != 0)
		goto done;
	if (e.env_claims.via.map.size != 5 || cosign_fields(&e.env_claims, &z, out->co_origin,
	    &out->co_size, out->co_root, &out->co_t_ms) != 0 ||
	    mpk_get_str(&e.env_claims, "witness", out->co_witness, sizeof(out->co_witness)) != 0 ||
	    out->co_witness[0] == '\0') {
		snprintf(err, errlen, "the cosignature's payload is not {origin, size, root, t_ms, "
		    "witness}");
		goto done;
	}
	if (strcmp(out->co_origin, out->co_witness) == 0) {
		snprintf(err, errlen, "the cosignature's witness %s names itself as the origin",
		    out->co_witness);
		goto done;
	}
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	return ret;
}

int
cosign_origin(const char *gateway, const char *node, char *out, size_t outlen)
{
	int	n;

	if (node == NULL || node[0] == '\0')
		n = snprintf(out, outlen, "%s", gateway);
	else
		n = snprintf(out, outlen, "%s/%s", gateway, node);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}
