/*
 * verification.c - POST /v1/verifications: a consumer asks predicates about
 * a subject's records ("is the household registered in one of these
 * districts?") and gets sealed yes/no attestations instead of the records.
 *
 * The request runs through the exchange state machine of exchange.c
 * (consent, jti claim, guardian proof, fetch, seal, journal, reply), one
 * item per predicate; what differs lives here: the attestation that is
 * sealed in place of the document, the "verify" journal record, and the
 * shape of a result.  No value of the record leaves the SEAL step: the
 * attestation states the consumer's own predicate and a boolean, and the
 * journal keeps only the predicate's field and operator.
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"

void
verification_start(struct gw *gw, struct evhttp_request *req, const struct principal *pr,
    msgpack_zone *z, const msgpack_object *body)
{
	exchange_begin(gw, req, pr, z, body, true);
}

enum lb_err
verification_attest(const struct predicate *pd, const msgpack_object *doc, const char *subject,
    const char *dept, uint64_t iat, msgpack_zone *z, msgpack_object *att, bool *result,
    char *err, size_t errlen)
{
	enum lb_err	e;

	if ((e = predicate_eval(pd, doc, result, err, errlen)) != LB_OK)
		return e;
	*att = predicate_attestation(pd, *result, subject, dept, iat, z);
	return LB_OK;
}

void
verification_record(const struct predicate *pd, struct jrec *r)
{
	r->jr_kind = JK_VERIFY;
	snprintf(r->jr_pred_field, sizeof(r->jr_pred_field), "%s", pd->pd_field);
	snprintf(r->jr_pred_op, sizeof(r->jr_pred_op), "%s", predicate_op_name(pd->pd_op));
}

msgpack_object
verification_result(msgpack_zone *z, const char *subject, const struct predicate *pd,
    enum lb_err status, const char *msg, uint64_t seq, bool result, const msgpack_object *att,
    const uint8_t *bytes, size_t len, const uint8_t *receipt, size_t receipt_len)
{
	struct mpk_map	m;
	msgpack_object	seal;

	mpk_map_init(&m, z, 9);
	mpk_map_put(&m, "subject", mpk_str(subject));
	mpk_map_put(&m, "item", mpk_str(pd->pd_item));
	mpk_map_put(&m, "predicate", predicate_object(pd, z));
	mpk_map_put(&m, "status", mpk_str(lb_err_code(status)));
	mpk_map_put(&m, "journal_seq", mpk_uint(seq));
	if (status != LB_OK) {
		mpk_map_put(&m, "message", mpk_str(msg));
		return m.mm_obj;
	}
	mpk_map_put(&m, "result", mpk_bool(result));
	mpk_map_put(&m, "attestation", *att);
	mpk_map_put(&m, "attestation_bytes", mpk_bin(bytes, len));
	if (mpk_unpack(receipt, receipt_len, z, &seal) == 0)
		mpk_map_put(&m, "seal", seal);
	return m.mm_obj;
}
