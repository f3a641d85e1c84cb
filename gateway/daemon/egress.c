/*
 * egress.c - where adapters registered through the API may send requests:
 * the operator's endpoint list (--endpoints FILE, docs/operations.md),
 * hosts and networks per department, loaded with every configuration
 * snapshot.
 *
 * A department that registers an adapter chooses a URL the gateway will
 * fetch from inside the operator's network; without a list that would let
 * it reach the loopback interface, a cloud metadata service or any private
 * address (server-side request forgery).  The operator's own file adapters
 * are not checked: the files are the operator's.
 *
 * The rules (docs/formats.md, "Endpoints of registered adapters"):
 *
 *   registration  the endpoint's host must be listed for the department:
 *                 a DNS name by a name entry, an IP address by a network
 *                 entry, with the port when the entry names one;
 *   each request  every address the host resolves to (an IP literal is
 *                 its own) must be allowed: inside a network entry, or
 *                 reached through a listed name and not special.
 *
 * Special addresses (loopback, private, link-local, unspecified, multicast,
 * and the IPv6 forms that carry IPv4 addresses) are allowed only by a
 * network entry that lies inside the special range: the operator must name
 * them.  So "0.0.0.0/0" allows every public IPv4 address and no private
 * one, and a listed name that suddenly resolves to 127.0.0.1 (DNS
 * rebinding) is refused unless 127.0.0.1 is listed too.  Checking the
 * resolved address, and connecting to exactly that address, is what makes
 * the list hold against a department that controls its own DNS.
 */
#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"

#define EGRESS_MAX_DEPTS	1024	/* departments in the file */
#define EGRESS_MAX_RULES	256	/* entries per department */

struct egress_rule {
	char		er_name[256];	/* a DNS name; "" for a network */
	struct netaddr	er_net;
	unsigned	er_prefix;
	int		er_port;	/* 0: any port */
};

struct egress_dept {
	char			 ed_dept[LB_ID_MAX];
	struct egress_rule	*ed_rules;
	size_t			 ed_nrules;
};

struct egress {
	struct egress_dept	*eg_depts;
	size_t			 eg_ndepts;
};

/* Ranges no name entry reaches; IPv4-mapped addresses are IPv4 by then. */
struct egress_range {
	struct netaddr	 rg_net;
	unsigned	 rg_prefix;
	const char	*rg_what;
};

static const struct egress_range egress_special[] = {
	{ { AF_INET, { 0 } }, 8, "a \"this network\" address" },
	{ { AF_INET, { 10 } }, 8, "a private address" },
	{ { AF_INET, { 100, 64 } }, 10, "a shared (carrier-grade NAT) address" },
	{ { AF_INET, { 127 } }, 8, "a loopback address" },
	{ { AF_INET, { 169, 254 } }, 16, "a link-local address" },
	{ { AF_INET, { 172, 16 } }, 12, "a private address" },
	{ { AF_INET, { 192, 0, 0 } }, 24, "an IETF protocol address" },
	{ { AF_INET, { 192, 168 } }, 16, "a private address" },
	{ { AF_INET, { 198, 18 } }, 15, "a benchmarking address" },
	{ { AF_INET, { 224 } }, 4, "a multicast address" },
	{ { AF_INET, { 240 } }, 4, "a reserved or broadcast address" },
	{ { AF_INET6, { 0 } }, 128, "the unspecified address" },
	{ { AF_INET6, { [15] = 1 } }, 128, "a loopback address" },
	{ { AF_INET6, { 0 } }, 96, "an IPv4-compatible address" },
	{ { AF_INET6, { 0, 0x64, 0xff, 0x9b } }, 96, "a NAT64 address" },
	{ { AF_INET6, { 0, 0x64, 0xff, 0x9b, 0, 1 } }, 48, "a NAT64 address" },
	{ { AF_INET6, { 1 } }, 64, "a discard address" },
	{ { AF_INET6, { 0x20, 0x01 } }, 32, "a Teredo address" },
	{ { AF_INET6, { 0x20, 0x02 } }, 16, "a 6to4 address" },
	{ { AF_INET6, { 0xfc } }, 7, "a unique local (private) address" },
	{ { AF_INET6, { 0xfe, 0x80 } }, 10, "a link-local address" },
	{ { AF_INET6, { 0xfe, 0xc0 } }, 10, "a site-local address" },
	{ { AF_INET6, { 0xff } }, 8, "a multicast address" },
};

/* The narrowest special range that holds a, or NULL: a public address. */
static const struct egress_range *
egress_special_range(const struct netaddr *a)
{
	const struct egress_range	*best = NULL;
	size_t				 i;

	for (i = 0; i < sizeof(egress_special) / sizeof(egress_special[0]); i++)
		if (endpoint_addr_in(a, &egress_special[i].rg_net, egress_special[i].rg_prefix) &&
		    (best == NULL || egress_special[i].rg_prefix > best->rg_prefix))
			best = &egress_special[i];
	return best;
}

static const struct egress_dept *
egress_dept(const struct egress *eg, const char *dept)
{
	size_t	i;

	for (i = 0; i < eg->eg_ndepts; i++)
		if (strcmp(eg->eg_depts[i].ed_dept, dept) == 0)
			return &eg->eg_depts[i];
	return NULL;
}

/*
 * True when a, reached on port (through the DNS name name, or as a literal
 * when name is NULL), is allowed by the rules of ed.
 */
static bool
egress_allows(const struct egress_dept *ed, const struct netaddr *a, int port,
    const char *name)
{
	const struct egress_range	*sp = egress_special_range(a);
	const struct egress_rule	*r;
	size_t				 i;

	for (i = 0; ed != NULL && i < ed->ed_nrules; i++) {
		r = &ed->ed_rules[i];
		if (r->er_port != 0 && r->er_port != port)
			continue;
		if (r->er_name[0] != '\0') {
			if (name != NULL && sp == NULL && strcmp(r->er_name, name) == 0)
				return true;
			continue;
		}
		if (!endpoint_addr_in(a, &r->er_net, r->er_prefix))
			continue;
		/* A special address needs an entry inside its range. */
		if (sp == NULL || (r->er_prefix >= sp->rg_prefix &&
		    endpoint_addr_in(&r->er_net, &sp->rg_net, sp->rg_prefix)))
			return true;
	}
	return false;
}

static bool
egress_name_listed(const struct egress_dept *ed, const char *name, int port)
{
	size_t	i;

	for (i = 0; ed != NULL && i < ed->ed_nrules; i++)
		if (strcmp(ed->ed_rules[i].er_name, name) == 0 &&
		    (ed->ed_rules[i].er_port == 0 || ed->ed_rules[i].er_port == port))
			return true;
	return false;
}

int
egress_check_adapter(const struct egress *eg, const struct adapter *ad, char *err,
    size_t errlen)
{
	const struct egress_dept	*ed = egress_dept(eg, ad->ad_dept);
	const struct egress_range	*sp;
	struct endpoint			 ep;
	char				 why[160];

	if (endpoint_parse(ad->ad_endpoint, &ep, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "\"endpoint\": %s", why);
		return -1;
	}
	if (ep.ep_literal ? egress_allows(ed, &ep.ep_addr, ep.ep_port, NULL) :
	    egress_name_listed(ed, ep.ep_host, ep.ep_port))
		return 0;
	sp = ep.ep_literal ? egress_special_range(&ep.ep_addr) : NULL;
	snprintf(err, errlen, "\"endpoint\": the host %s (port %d%s%s) is not in the "
	    "operator's endpoint list for department %s; an adapter registered through the "
	    "API may reach only the hosts and networks the operator lists", ep.ep_host,
	    ep.ep_port, sp != NULL ? ", " : "", sp != NULL ? sp->rg_what : "", ad->ad_dept);
	return -1;
}

int
egress_check_addr(const struct egress *eg, const char *dept, const struct endpoint *ep,
    const struct netaddr *a, char *err, size_t errlen)
{
	const struct egress_range	*sp;
	char				 text[64];

	if (egress_allows(egress_dept(eg, dept), a, ep->ep_port,
	    ep->ep_literal ? NULL : ep->ep_host))
		return 0;
	sp = egress_special_range(a);
	(void)endpoint_addr_text(a, text, sizeof(text));
	if (ep->ep_literal)
		snprintf(err, errlen, "%s (port %d%s%s) is not allowed for department %s by the "
		    "endpoint list", text, ep->ep_port, sp != NULL ? ", " : "",
		    sp != NULL ? sp->rg_what : "", dept);
	else
		snprintf(err, errlen, "%s resolves to %s (port %d%s%s), which the endpoint list "
		    "does not allow for department %s", ep->ep_host, text, ep->ep_port,
		    sp != NULL ? ", " : "", sp != NULL ? sp->rg_what : "", dept);
	return -1;
}

/*
 * One entry: "NAME[:PORT]", "A.B.C.D[/LEN][:PORT]" or "[IPV6[/LEN]][:PORT]".
 * A network's address may not have bits set past its prefix, and an IPv4
 * network is written without brackets, so that an entry reads as what it
 * allows.
 */
static int
egress_rule_parse(const msgpack_object *o, struct egress_rule *r, char *err, size_t errlen)
{
	char		 host[256], *slash, *end;
	struct netaddr	 masked;
	unsigned long	 prefix;
	unsigned	 max;
	bool		 bracketed, literal;

	memset(r, 0, sizeof(*r));
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0) {
		snprintf(err, errlen, "an entry must be a non-empty string");
		return -1;
	}
	if (endpoint_hostport(o->via.str.ptr, o->via.str.size, host, sizeof(host), &bracketed,
	    &r->er_port, err, errlen) != 0)
		return -1;
	if ((slash = strchr(host, '/')) != NULL)
		*slash++ = '\0';
	if (endpoint_host(host, bracketed, &literal, &r->er_net, err, errlen) != 0)
		return -1;
	if (!literal) {
		if (slash != NULL) {
			snprintf(err, errlen, "a network is an IP address and a prefix length");
			return -1;
		}
		snprintf(r->er_name, sizeof(r->er_name), "%s", host);
		return 0;
	}
	if (bracketed && r->er_net.na_family == AF_INET) {
		snprintf(err, errlen, "write IPv4 addresses and networks without brackets");
		return -1;
	}
	max = r->er_net.na_family == AF_INET ? 32 : 128;
	r->er_prefix = max;
	if (slash != NULL) {
		prefix = strtoul(slash, &end, 10);
		if (*slash < '0' || *slash > '9' || *end != '\0' || prefix > max) {
			snprintf(err, errlen, "the prefix length must be 0 to %u", max);
			return -1;
		}
		r->er_prefix = (unsigned)prefix;
	}
	/* The network address is the address with every bit past the prefix cleared. */
	memset(&masked, 0, sizeof(masked));
	masked.na_family = r->er_net.na_family;
	memcpy(masked.na_bytes, r->er_net.na_bytes, r->er_prefix / 8);
	if (r->er_prefix % 8 != 0)
		masked.na_bytes[r->er_prefix / 8] = (uint8_t)(r->er_net.na_bytes[r->er_prefix / 8] &
		    (0xff << (8 - r->er_prefix % 8)));
	if (memcmp(masked.na_bytes, r->er_net.na_bytes, sizeof(masked.na_bytes)) != 0) {
		snprintf(err, errlen, "the address has bits set past /%u", r->er_prefix);
		return -1;
	}
	return 0;
}

static int
egress_dept_parse(const msgpack_object_kv *kv, struct egress_dept *ed, char *err,
    size_t errlen)
{
	const msgpack_object	*list = &kv->val;
	char			 why[192], shown[96];
	uint32_t		 i;

	if (mpk_obj_str(&kv->key, ed->ed_dept, sizeof(ed->ed_dept)) != 0 ||
	    ed->ed_dept[0] == '\0') {
		snprintf(err, errlen, "\"departments\": a key is not a department id");
		return -1;
	}
	if (list->type != MSGPACK_OBJECT_ARRAY || list->via.array.size > EGRESS_MAX_RULES) {
		snprintf(err, errlen, "department \"%s\": want a list of at most %d entries",
		    ed->ed_dept, EGRESS_MAX_RULES);
		return -1;
	}
	if (list->via.array.size == 0)
		return 0;
	if ((ed->ed_rules = calloc(list->via.array.size, sizeof(*ed->ed_rules))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < list->via.array.size; i++) {
		if (egress_rule_parse(&list->via.array.ptr[i], &ed->ed_rules[i], why,
		    sizeof(why)) != 0) {
			if (mpk_obj_str(&list->via.array.ptr[i], shown, sizeof(shown)) != 0)
				snprintf(shown, sizeof(shown), "#%u", (unsigned)i + 1);
			snprintf(err, errlen, "department \"%s\": entry \"%s\": %s", ed->ed_dept,
			    shown, why);
			return -1;
		}
		ed->ed_nrules++;
	}
	return 0;
}

/* {"departments": {DEPT: [ENTRY, ...], ...}} and nothing else. */
static int
egress_parse(struct egress *eg, const msgpack_object *o, char *err, size_t errlen)
{
	const msgpack_object	*d;
	uint32_t		 i;

	if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size != 1 ||
	    (d = mpk_get(o, "departments")) == NULL) {
		snprintf(err, errlen, "want an object with the one key \"departments\"");
		return -1;
	}
	if (d->type != MSGPACK_OBJECT_MAP || d->via.map.size > EGRESS_MAX_DEPTS) {
		snprintf(err, errlen, "\"departments\" must map at most %d department ids to "
		    "lists of entries", EGRESS_MAX_DEPTS);
		return -1;
	}
	if (d->via.map.size > 0 &&
	    (eg->eg_depts = calloc(d->via.map.size, sizeof(*eg->eg_depts))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (i = 0; i < d->via.map.size; i++) {
		if (egress_dept_parse(&d->via.map.ptr[i], &eg->eg_depts[eg->eg_ndepts], err,
		    errlen) != 0) {
			/* Its rules, if any, are freed with the others. */
			eg->eg_ndepts++;
			return -1;
		}
		eg->eg_ndepts++;
		if (egress_dept(eg, eg->eg_depts[eg->eg_ndepts - 1].ed_dept) !=
		    &eg->eg_depts[eg->eg_ndepts - 1]) {
			snprintf(err, errlen, "department \"%s\" is listed twice",
			    eg->eg_depts[eg->eg_ndepts - 1].ed_dept);
			return -1;
		}
	}
	return 0;
}

struct egress *
egress_load(const char *path, bool missing_ok, char *err, size_t errlen)
{
	struct egress	*eg;
	msgpack_zone	 z;
	msgpack_object	 o;
	char		 why[384];
	int		 ret = -1;

	if ((eg = calloc(1, sizeof(*eg))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	msgpack_zone_init(&z, 4096);
	/* No list: adapters registered through the API reach nothing. */
	if (path[0] == '\0') {
		ret = 0;
		goto done;
	}
	if (missing_ok && access(path, F_OK) != 0) {
		log_warnx("%s: no endpoint list; adapters registered through the API can "
		    "reach no host (--endpoints FILE names one)", path);
		ret = 0;
		goto done;
	}
	if (config_json_file(path, &z, &o, err, errlen) != 0)
		goto done;
	if (egress_parse(eg, &o, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		goto done;
	}
	ret = 0;
done:
	msgpack_zone_destroy(&z);
	if (ret != 0) {
		egress_free(eg);
		eg = NULL;
	}
	return eg;
}

void
egress_free(struct egress *eg)
{
	size_t	i;

	if (eg == NULL)
		return;
	for (i = 0; i < eg->eg_ndepts; i++)
		free(eg->eg_depts[i].ed_rules);
	free(eg->eg_depts);
	free(eg);
}
