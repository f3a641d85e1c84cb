/*
 * relation.c - the relations a consent token may claim besides "self"
 * (docs/consent.md): a guardian for a minor, the legal representative of
 * an enterprise, an agent under a recorded delegation.  The token's claim
 * is never enough: each relation is proven by a record the bundle policy
 * names, fetched from its department and read here.  What differs between
 * the relations -- who may be the subject, what the record must say besides
 * naming the person acting, which code a refusal gets -- is in this file;
 * the fetching is the same for all three (the RELATION state of exchange.c).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lianban.h"

static const char *const relation_names[POLICY_REL__COUNT] = {
	[POLICY_REL_GUARDIAN] = "guardian",
	[POLICY_REL_LEGAL_REP] = "legal_rep",
	[POLICY_REL_AGENT] = "agent",
};
static const char *const relation_ops[POLICY_REL__COUNT] = {
	[POLICY_REL_GUARDIAN] = "guardian_proof",
	[POLICY_REL_LEGAL_REP] = "legal_rep_proof",
	[POLICY_REL_AGENT] = "agent_proof",
};

const char *
relation_name(enum policy_rel rel)
{
	return (unsigned)rel < POLICY_REL__COUNT ? relation_names[rel] : "self";
}

int
relation_from_name(const char *rel, enum policy_rel *out)
{
	int	r;

	for (r = 0; r < POLICY_REL__COUNT; r++)
		if (strcmp(rel, relation_names[r]) == 0) {
			*out = (enum policy_rel)r;
			return 0;
		}
	return -1;
}

enum lb_err
relation_error(enum policy_rel rel)
{
	return rel == POLICY_REL_GUARDIAN ? LB_E_GUARDIAN_UNVERIFIED : LB_E_AGENT_UNVERIFIED;
}

const char *
relation_proof_op(enum policy_rel rel)
{
	return (unsigned)rel < POLICY_REL__COUNT ? relation_ops[rel] : "proof";
}

/* Today in China (UTC+8) at unix time now, as y, m, d; -1 when the clock cannot be read. */
static int
relation_today(int64_t now, int *y, int *m, int *d)
{
	struct tm	tm;
	time_t		t = (time_t)now + 8 * 3600;

	if (gmtime_r(&t, &tm) == NULL)
		return -1;
	*y = tm.tm_year + 1900;
	*m = tm.tm_mon + 1;
	*d = tm.tm_mday;
	return 0;
}

/*
 * A guardian consents for a minor only.  The resident ID number (GB 11643)
 * holds the date of birth in digits 7 to 14.
 */
static bool
relation_minor(const char *id, int64_t now, char *msg, size_t msglen)
{
	int	ny, nm, nd, y, m, d, age;

	if (relation_today(now, &ny, &nm, &nd) != 0 || subject_id_birth(id, &y, &m, &d) != 0) {
		snprintf(msg, msglen, "a guardian consents only for a minor, and the subject's "
		    "id holds no valid date of birth");
		return false;
	}
	age = ny - y;
	if (nm < m || (nm == m && nd < d))
		age--;
	if (age < 0) {
		snprintf(msg, msglen, "the subject's id gives a date of birth in the future");
		return false;
	}
	if (age >= 18) {
		snprintf(msg, msglen, "the subject is %d years old; a guardian consents only "
		    "for a minor", age);
		return false;
	}
	return true;
}

bool
relation_subject_ok(enum policy_rel rel, const char *sub, int64_t now, char *msg,
    size_t msglen)
{
	/* legal_rep's subject (an enterprise's code) was checked with the token's claims. */
	if (rel == POLICY_REL_GUARDIAN)
		return relation_minor(sub, now, msg, msglen);
	msg[0] = '\0';
	return true;
}

void
relation_field(const msgpack_object *doc, const char *key, char *out, size_t outlen)
{
	const msgpack_object	*o;
	size_t			 n;

	out[0] = '\0';
	if (outlen == 0 || (o = mpk_get(mpk_get(doc, "fields"), key)) == NULL ||
	    o->type != MSGPACK_OBJECT_STR)
		return;
	n = o->via.str.size < outlen - 1 ? o->via.str.size : outlen - 1;
	/* A cut text ends on a character boundary of its UTF-8. */
	if (n < o->via.str.size)
		while (n > 0 && ((unsigned char)o->via.str.ptr[n] & 0xc0) == 0x80)
			n--;
	memcpy(out, o->via.str.ptr, n);
	out[n] = '\0';
}

/* Whether the delegation's "bundles" (array of str, or one str of ids) lists bundle. */
static bool
relation_covers(const msgpack_object *doc, const char *bundle)
{
	const msgpack_object	*o, *e;
	const char		*p, *end;
	size_t			 blen = strlen(bundle), n;
	uint32_t		 i;

	if ((o = mpk_get(mpk_get(doc, "fields"), "bundles")) == NULL)
		return false;
	if (o->type == MSGPACK_OBJECT_ARRAY) {
		for (i = 0; i < o->via.array.size; i++) {
			e = &o->via.array.ptr[i];
			if (mpk_str_eq(e, bundle))
				return true;
		}
		return false;
	}
	if (o->type != MSGPACK_OBJECT_STR)
		return false;
	p = o->via.str.ptr;
	end = p + o->via.str.size;
	while (p < end) {
		while (p < end && (*p == ',' || *p == ' ' || *p == ';'))
			p++;
		for (n = 0; p + n < end && p[n] != ',' && p[n] != ' ' && p[n] != ';'; n++)
			;
		if (n == blen && n > 0 && memcmp(p, bundle, n) == 0)
			return true;
		p += n;
	}
	return false;
}

/* A YYYY-MM-DD day of the record as an integer YYYYMMDD; -1 when it is not one. */
static long
relation_day(const char *s)
{
	int	i;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -1;
	return ((s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0')) *
	    10000L + ((s[5] - '0') * 10 + (s[6] - '0')) * 100 + (s[8] - '0') * 10 + (s[9] - '0');
}

/*
 * The terms of a delegation: in force (status active, today within its
 * validity period) and covering the bundle applied for.
 */
static bool
relation_delegation_ok(const msgpack_object *doc, const char *bundle, int64_t now,
    char *why, size_t whylen)
{
	char	status[32], from[16], until[16];
	long	today, f, u;
	int	y, m, d;

	relation_field(doc, "status", status, sizeof(status));
	relation_field(doc, "valid_from", from, sizeof(from));
	relation_field(doc, "valid_until", until, sizeof(until));
	if (strcmp(status, "active") != 0) {
		snprintf(why, whylen, "the delegation is not in force (status \"%s\")",
		    status[0] != '\0' ? status : "missing");
		return false;
	}
	if (relation_today(now, &y, &m, &d) != 0 || (f = relation_day(from)) < 0 ||
	    (u = relation_day(until)) < 0) {
		snprintf(why, whylen, "the delegation does not give its validity period "
		    "as valid_from and valid_until");
		return false;
	}
	today = y * 10000L + m * 100 + d;
	if (today < f) {
		snprintf(why, whylen, "the delegation is valid only from %s", from);
		return false;
	}
	if (today > u) {
		snprintf(why, whylen, "the delegation expired on %s", until);
		return false;
	}
	if (!relation_covers(doc, bundle)) {
		snprintf(why, whylen, "the delegation does not cover bundle \"%s\"", bundle);
		return false;
	}
	return true;
}

bool
relation_proven(enum policy_rel rel, const struct policy_proof *pp, const msgpack_object *doc,
    const char *act, const char *bundle, int64_t now, char *why, size_t whylen)
{
	char	status[32];

	why[0] = '\0';
	if (!policy_proof_names(pp, doc, act)) {
		snprintf(why, whylen, rel == POLICY_REL_GUARDIAN ?
		    "the child's %s does not name the applicant as guardian" :
		    rel == POLICY_REL_LEGAL_REP ?
		    "the enterprise's %s does not name the applicant as legal representative" :
		    "the %s does not name the applicant as the subject's agent", pp->pp_item);
		return false;
	}
	if (rel == POLICY_REL_AGENT)
		return relation_delegation_ok(doc, bundle, now, why, whylen);
	relation_field(doc, "status", status, sizeof(status));
	if (rel == POLICY_REL_LEGAL_REP && status[0] != '\0' && strcmp(status, "active") != 0) {
		snprintf(why, whylen, "the enterprise's %s gives its status as \"%s\", not "
		    "\"active\"", pp->pp_item, status);
		return false;
	}
	return true;
}
