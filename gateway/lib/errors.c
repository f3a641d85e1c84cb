/*
 * errors.c - the error codes of the HTTP API (docs/contract.md §8), their statuses, and
 * the first-failure outcome of a request.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lianban.h"

static const struct {
	const char	*er_code;
	int		 er_status;
} lb_errs[LB_E__COUNT] = {
	[LB_OK] =			{ "ok",				200 },
	[LB_E_BAD_REQUEST] =		{ "bad_request",		400 },
	[LB_E_TOO_LARGE] =		{ "too_large",			413 },
	[LB_E_UNAUTHENTICATED] =	{ "unauthenticated",		401 },
	[LB_E_FORBIDDEN_ROLE] =		{ "forbidden_role",		403 },
	[LB_E_NOT_FOUND] =		{ "not_found",			404 },
	[LB_E_METHOD_NOT_ALLOWED] =	{ "method_not_allowed",		405 },
	[LB_E_UNKNOWN_BUNDLE] =		{ "unknown_bundle",		404 },
	[LB_E_ITEM_NOT_IN_POLICY] =	{ "item_not_in_policy",		403 },
	[LB_E_CONSENT_MISSING] =	{ "consent_missing",		401 },
	[LB_E_CONSENT_MALFORMED] =	{ "consent_malformed",		400 },
	[LB_E_CONSENT_BAD_SIGNATURE] =	{ "consent_bad_signature",	403 },
	[LB_E_CONSENT_UNTRUSTED_ISSUER] = { "consent_untrusted_issuer",	403 },
	[LB_E_CONSENT_WRONG_AUDIENCE] =	{ "consent_wrong_audience",	403 },
	[LB_E_CONSENT_WRONG_CONSUMER] =	{ "consent_wrong_consumer",	403 },
	[LB_E_CONSENT_EXPIRED] =	{ "consent_expired",		403 },
	[LB_E_CONSENT_NOT_YET_VALID] =	{ "consent_not_yet_valid",	403 },
	[LB_E_CONSENT_WRONG_BUNDLE] =	{ "consent_wrong_bundle",	403 },
	[LB_E_CONSENT_ITEM_NOT_COVERED] = { "consent_item_not_covered",	403 },
	[LB_E_ASSURANCE_TOO_LOW] =	{ "assurance_too_low",		403 },
	[LB_E_CONSENT_REPLAYED] =	{ "consent_replayed",		409 },
	[LB_E_CONSENT_REVOKED] =	{ "consent_revoked",		403 },
	[LB_E_GUARDIAN_UNVERIFIED] =	{ "guardian_unverified",	403 },
	[LB_E_NO_ADAPTER] =		{ "no_adapter",			502 },
	[LB_E_DEPARTMENT_UNAVAILABLE] =	{ "department_unavailable",	502 },
	[LB_E_DEPARTMENT_TIMEOUT] =	{ "department_timeout",		504 },
	[LB_E_DEPARTMENT_BAD_RESPONSE] = { "department_bad_response",	502 },
	[LB_E_SUBJECT_MISMATCH] =	{ "subject_mismatch",		502 },
	[LB_E_RATE_LIMITED] =		{ "rate_limited",		429 },
	[LB_E_JOURNAL_UNAVAILABLE] =	{ "journal_unavailable",	503 },
	[LB_E_AGENT_UNVERIFIED] =	{ "agent_unverified",		403 },
	[LB_E_PREDICATE_NOT_ALLOWED] =	{ "predicate_not_allowed",	403 },
	[LB_E_INTERNAL] =		{ "internal_error",		500 },
};

void
lb_outcome_fail(struct lb_outcome *oc, enum lb_err e, const char *fmt, ...)
{
	va_list	ap;

	if (oc->oc_code != LB_OK)
		return;		/* the first failure is the one reported */
	oc->oc_code = e;
	va_start(ap, fmt);
	vsnprintf(oc->oc_msg, sizeof(oc->oc_msg), fmt, ap);
	va_end(ap);
}

const char *
lb_err_code(enum lb_err e)
{
	if ((unsigned)e >= LB_E__COUNT)
		return "internal_error";
	return lb_errs[e].er_code;
}

int
lb_err_status(enum lb_err e)
{
	if ((unsigned)e >= LB_E__COUNT)
		return 500;
	return lb_errs[e].er_status;
}
