/*
 * endpoint.c - where a department endpoint points: the scheme, host and
 * port of an adapter's endpoint URL, IP address literals (IPv4, bracketed
 * IPv6, IPv4-mapped IPv6) and DNS names, and the IP addresses and networks
 * the operator's endpoint list and the fan-out compare.
 *
 * One parser serves the adapter specs, the fan-out and the endpoint list,
 * so that the host a spec was checked for is the host the gateway connects
 * to.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lianban.h"

#define ENDPOINT_LABEL_MAX	63	/* RFC 1035 */
#define ENDPOINT_NAME_MAX	253

static int	endpoint_err(char *err, size_t errlen, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));

/* A sentence in err, when the caller wants one; always -1. */
static int
endpoint_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * A DNS name made of letters, digits and hyphens (RFC 1123), at most 253
 * characters, lower-cased in place.  The last label may not be all digits
 * (RFC 3696 §2): "127.1" or "2130706433" would otherwise be read as IPv4
 * addresses by some resolvers and as names by others.
 */
static int
endpoint_name(char *host, char *err, size_t errlen)
{
	size_t	 len = strlen(host), label = 0, i;
	bool	 digits = true;
	char	 c;

	if (len == 0 || len > ENDPOINT_NAME_MAX)
		return endpoint_err(err, errlen, "the host \"%s\" is not a DNS name of 1 to 253 "
		    "characters", host);
	for (i = 0; i <= len; i++) {
		c = host[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > ENDPOINT_LABEL_MAX || host[i - 1] == '-')
				return endpoint_err(err, errlen, "the host \"%s\" is not a DNS name "
				    "(labels of 1 to 63 letters, digits or \"-\")", host);
			if (c == '\0' && digits)
				return endpoint_err(err, errlen, "the host \"%s\" is neither a "
				    "dotted IPv4 address nor a DNS name", host);
			label = 0;
			digits = true;
			continue;
		}
		if (c >= 'A' && c <= 'Z')
			host[i] = c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    (c == '-' && label > 0)))
			return endpoint_err(err, errlen, "the host \"%s\" is not a DNS name "
			    "(labels of 1 to 63 letters, digits or \"-\")", host);
		if (c < '0' || c > '9')
			digits = false;
		label++;
	}
	return 0;
}

/* ::ffff:a.b.c.d is the IPv4 address a.b.c.d wherever an address is compared. */
static void
endpoint_addr_unmap(struct netaddr *a)
{
	static const uint8_t	mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (a->na_family == AF_INET6 && memcmp(a->na_bytes, mapped, sizeof(mapped)) == 0) {
		memmove(a->na_bytes, a->na_bytes + 12, 4);
		memset(a->na_bytes + 4, 0, 12);
		a->na_family = AF_INET;
	}
}

int
endpoint_hostport(const char *s, size_t len, char *host, size_t hostsz, bool *bracketed,
    int *port, char *err, size_t errlen)
{
	const char	*h = s, *end = s + len, *colon = NULL, *p;
	size_t		 hlen;
	int		 v = 0;

	*bracketed = false;
	*port = 0;
	if (len > 0 && s[0] == '[') {
		if ((p = memchr(s, ']', len)) == NULL)
			return endpoint_err(err, errlen, "\"[\" without \"]\"");
		h = s + 1;
		hlen = (size_t)(p - h);
		*bracketed = true;
		if (p + 1 < end) {
			if (p[1] != ':')
				return endpoint_err(err, errlen, "only \":PORT\" may follow \"]\"");
			colon = p + 1;
		}
	} else {
		for (p = s; p < end; p++)
			if (*p == ':') {
				if (colon != NULL)
					return endpoint_err(err, errlen, "an IPv6 address must be "
					    "written in brackets, as in [::1]");
				colon = p;
			}
		hlen = colon != NULL ? (size_t)(colon - s) : len;
	}
	if (hlen == 0 || hlen >= hostsz)
		return endpoint_err(err, errlen, "the host is empty or longer than %zu characters",
		    hostsz - 1);
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (colon == NULL)
		return 0;
	if (colon + 1 == end || end - colon > 6)
		return endpoint_err(err, errlen, "the port must be a number from 1 to 65535");
	for (p = colon + 1; p < end; p++) {
		if (*p < '0' || *p > '9')
			return endpoint_err(err, errlen, "the port must be a number from 1 to "
			    "65535");
		v = v * 10 + (*p - '0');
	}
	if (v < 1 || v > 65535)
		return endpoint_err(err, errlen, "the port must be a number from 1 to 65535");
	*port = v;
	return 0;
}

int
endpoint_host(char *host, bool bracketed, bool *literal, struct netaddr *addr, char *err,
    size_t errlen)
{
	memset(addr, 0, sizeof(*addr));
	*literal = false;
	if (bracketed) {
		/* Zone ids ("%25eth0") are refused too: inet_pton does not take them. */
		if (inet_pton(AF_INET6, host, addr->na_bytes) != 1)
			return endpoint_err(err, errlen, "\"[%s]\" is not an IPv6 address", host);
		addr->na_family = AF_INET6;
		endpoint_addr_unmap(addr);
		*literal = true;
		return 0;
	}
	if (inet_pton(AF_INET, host, addr->na_bytes) == 1) {
		addr->na_family = AF_INET;
		*literal = true;
		return 0;
	}
	return endpoint_name(host, err, errlen);
}

int
endpoint_parse(const char *url, struct endpoint *ep, char *err, size_t errlen)
{
	const char	*auth;
	size_t		 alen;
	bool		 bracketed;
	char		 why[160];

	memset(ep, 0, sizeof(*ep));
	if (strncmp(url, "http://", 7) == 0)
		auth = url + 7;
	else if (strncmp(url, "https://", 8) == 0) {
		auth = url + 8;
		ep->ep_tls = true;
	} else
		return endpoint_err(err, errlen, "the URL must start with http:// or "
		    "https://");
	alen = strcspn(auth, "/?#");
	if (memchr(auth, '@', alen) != NULL)
		return endpoint_err(err, errlen, "the URL may not carry user information "
		    "(\"user@\")");
	if (alen >= sizeof(ep->ep_authority))
		return endpoint_err(err, errlen, "the URL's host is longer than %d characters",
		    ENDPOINT_NAME_MAX);
	memcpy(ep->ep_authority, auth, alen);
	ep->ep_authority[alen] = '\0';
	if (endpoint_hostport(auth, alen, ep->ep_host, sizeof(ep->ep_host), &bracketed,
	    &ep->ep_port, why, sizeof(why)) != 0 ||
	    endpoint_host(ep->ep_host, bracketed, &ep->ep_literal, &ep->ep_addr, why,
	    sizeof(why)) != 0)
		return endpoint_err(err, errlen, "%s", why);
	if (ep->ep_port == 0)
		ep->ep_port = ep->ep_tls ? 443 : 80;
	ep->ep_path = (size_t)(auth - url) + alen;
	return 0;
}

int
endpoint_addr_from(const struct sockaddr *sa, struct netaddr *a)
{
	memset(a, 0, sizeof(*a));
	if (sa->sa_family == AF_INET) {
		memcpy(a->na_bytes, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		a->na_family = AF_INET;
	} else if (sa->sa_family == AF_INET6) {
		memcpy(a->na_bytes, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    16);
		a->na_family = AF_INET6;
		endpoint_addr_unmap(a);
	} else
		return -1;
	return 0;
}

int
endpoint_addr_text(const struct netaddr *a, char *buf, size_t bufsz)
{
	if (inet_ntop(a->na_family, a->na_bytes, buf, (socklen_t)bufsz) == NULL) {
		if (bufsz > 0)
			buf[0] = '\0';
		return -1;
	}
	return 0;
}

bool
endpoint_addr_in(const struct netaddr *a, const struct netaddr *net, unsigned prefix)
{
	unsigned	bytes = prefix / 8, bits = prefix % 8;
	uint8_t		mask;

	if (a->na_family != net->na_family ||
	    prefix > (a->na_family == AF_INET ? 32u : 128u))
		return false;
	if (memcmp(a->na_bytes, net->na_bytes, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - bits));
	return (a->na_bytes[bytes] & mask) == (net->na_bytes[bytes] & mask);
}
