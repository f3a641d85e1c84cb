/*
 * check_fanout.c - unit tests for the fan-out's ownership of a fetch
 * (gateway/daemon/fanout.c) and the endpoint parser it shares with the
 * adapter specs (gateway/lib/endpoint.c).  Whatever way a fetch ends (a
 * connection that fails inside evhttp_make_request, a resolver that answers
 * at once or never), its callback runs exactly once, from the loop, after
 * fanout_fetch returned, and nothing is used after it is freed (run under
 * ASan or valgrind).  The exchanges over real departments are tested by
 * tests/it_attack_fanout.py.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>

#include "gateway.h"
#include "check_util.h"

static struct event_base	*base;
static struct fanout		*fo;
static struct adapter		*ad;	/* the demo nhc adapter; tests change its endpoint */

/* What one fetch's callback saw. */
struct outcome {
	int		oc_calls;
	enum lb_err	oc_err;
	char		oc_msg[512];
};

static bool	in_fetch;	/* fanout_fetch is running: its callback must not */
static int	done;		/* callbacks run */

static void
setup(void)
{
	msgpack_zone	z;
	msgpack_object	o;
	char		path[512], err[512];

	ck_assert_ptr_nonnull(base = event_base_new());
	ck_assert_ptr_nonnull(fo = fanout_new(base, NULL));
	snprintf(path, sizeof(path), "%s/adapters/specs/nhc-birth.json", check_srcdir());
	msgpack_zone_init(&z, 4096);
	ck_assert_msg(config_json_file(path, &z, &o, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(adapter_parse(&o, &ad, err, sizeof(err)) == 0, "%s", err);
	msgpack_zone_destroy(&z);
	in_fetch = false;
	done = 0;
}

static void
teardown(void)
{
	fanout_free(fo);
	/* What fanout_free left to the loop (a resolver's last answers). */
	event_base_loop(base, EVLOOP_NONBLOCK);
	adapter_free(ad);
	event_base_free(base);
}

static void
fetched(void *arg, enum lb_err e, const uint8_t *body, size_t len, const char *msg)
{
	struct outcome	*oc = arg;

	(void)body;
	(void)len;
	ck_assert_msg(!in_fetch, "the callback ran inside fanout_fetch");
	oc->oc_calls++;
	oc->oc_err = e;
	snprintf(oc->oc_msg, sizeof(oc->oc_msg), "%s", msg != NULL ? msg : "");
	done++;
}

static void
fetch(const char *endpoint, unsigned timeout_ms, struct outcome *oc)
{
	snprintf(ad->ad_endpoint, sizeof(ad->ad_endpoint), "%s", endpoint);
	ad->ad_timeout_ms = timeout_ms;
	memset(oc, 0, sizeof(*oc));
	in_fetch = true;
	ck_assert_int_eq(fanout_fetch(fo, NULL, ad, "birth_medical_certificate",
	    "110105202601010115", fetched, oc), 0);
	in_fetch = false;
}

/*
 * Makes the fan-out ask a UDP port on 127.0.0.1 that receives questions and
 * never answers them, and starts a fetch of a name there.  Returns the
 * port's socket, for the caller to close.
 */
static int
fetch_unanswered(unsigned timeout_ms, struct outcome *oc)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	char			ns[64];
	int			fd;

	ck_assert_int_ge(fd = socket(AF_INET, SOCK_DGRAM, 0), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(ns, sizeof(ns), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
	ck_assert_int_eq(fanout_nameserver(fo, ns), 0);
	fetch("http://dept.example:8701/nhc?id={subject}", timeout_ms, oc);
	return fd;
}

/*
 * Connecting to the broadcast address fails inside connect(2), so libevent
 * completes every request of the connection inside evhttp_make_request;
 * the second and third fetch share the first one's pool.
 */
START_TEST(test_failure_inside_make_request)
{
	struct outcome	oc[3];
	size_t		i;

	for (i = 0; i < NELEM(oc); i++)
		fetch("http://255.255.255.255:9/nhc?id={subject}", 5000, &oc[i]);
	check_run_until(base, &done, NELEM(oc), 5000);
	for (i = 0; i < NELEM(oc); i++) {
		ck_assert_int_eq(oc[i].oc_calls, 1);
		ck_assert_int_eq(oc[i].oc_err, LB_E_DEPARTMENT_UNAVAILABLE);
		ck_assert_ptr_nonnull(strstr(oc[i].oc_msg, "department nhc"));
	}
}
END_TEST

/* IPv6 literals, IPv4-mapped ones included, are endpoints like any other. */
START_TEST(test_ipv6_literals)
{
	struct outcome	oc[2];
	size_t		i;

	fetch("http://[::ffff:255.255.255.255]:9/nhc?id={subject}", 5000, &oc[0]);
	fetch("http://[ff02::1]:9/nhc?id={subject}", 5000, &oc[1]);
	check_run_until(base, &done, NELEM(oc), 5000);
	for (i = 0; i < NELEM(oc); i++) {
		ck_assert_int_eq(oc[i].oc_calls, 1);
		ck_assert_int_eq(oc[i].oc_err, LB_E_DEPARTMENT_UNAVAILABLE);
	}
}
END_TEST

/* /etc/hosts answers inside evdns_getaddrinfo. */
START_TEST(test_name_answered_at_once)
{
	struct outcome	oc;

	fetch("http://localhost:9/nhc?id={subject}", 5000, &oc);
	check_run_until(base, &done, 1, 5000);
	ck_assert_int_eq(oc.oc_calls, 1);
	ck_assert_int_eq(oc.oc_err, LB_E_DEPARTMENT_UNAVAILABLE);
}
END_TEST

/*
 * A name server that never answers: the timeout ends the fetch while its
 * question is out, and the fetch is freed when the cancelled question
 * comes back.
 */
START_TEST(test_timeout_while_resolving)
{
	struct outcome	oc;
	int		fd = fetch_unanswered(20, &oc);

	check_run_until(base, &done, 1, 5000);
	ck_assert_int_eq(oc.oc_calls, 1);
	ck_assert_int_eq(oc.oc_err, LB_E_DEPARTMENT_TIMEOUT);
	/* Time for the cancelled question's answer; the callback does not run again. */
	check_run_until(base, &done, 2, 100);
	ck_assert_int_eq(oc.oc_calls, 1);
	close(fd);
}
END_TEST

/* The pool goes while a question is out: the fetch ends once, with an error. */
START_TEST(test_free_while_resolving)
{
	struct outcome	oc;
	int		fd = fetch_unanswered(60000, &oc);

	check_run_until(base, &done, 1, 50);
	ck_assert_int_eq(oc.oc_calls, 0);
	fanout_free(fo);
	fo = NULL;
	check_run_until(base, &done, 1, 5000);
	ck_assert_int_eq(oc.oc_calls, 1);
	ck_assert_int_eq(oc.oc_err, LB_E_DEPARTMENT_UNAVAILABLE);
	close(fd);
}
END_TEST

/* An endpoint that cannot be parsed is refused before anything starts. */
START_TEST(test_unusable_endpoint)
{
	struct outcome	oc;

	memset(&oc, 0, sizeof(oc));
	snprintf(ad->ad_endpoint, sizeof(ad->ad_endpoint), "http://[::1/nhc?id={subject}");
	ck_assert_int_eq(fanout_fetch(fo, NULL, ad, "birth_medical_certificate",
	    "110105202601010115", fetched, &oc), -1);
	check_run_until(base, &done, 1, 20);
	ck_assert_int_eq(oc.oc_calls, 0);
}
END_TEST

struct parse_case {
	const char	*pc_url;
	int		 pc_ret;
	const char	*pc_host;	/* as parsed */
	bool		 pc_literal;
	int		 pc_family;
	int		 pc_port;
	const char	*pc_authority;
};

static const struct parse_case parse_cases[] = {
	{ "http://127.0.0.1:8701/x", 0, "127.0.0.1", true, AF_INET, 8701, "127.0.0.1:8701" },
	{ "https://Dept.Example/x?id=1", 0, "dept.example", false, 0, 443, "Dept.Example" },
	{ "http://[::1]:8701/x", 0, "::1", true, AF_INET6, 8701, "[::1]:8701" },
	{ "http://[::ffff:127.0.0.1]/x", 0, "::ffff:127.0.0.1", true, AF_INET, 80,
	    "[::ffff:127.0.0.1]" },
	{ "http://host-1.example:1?id=2", 0, "host-1.example", false, 0, 1, "host-1.example:1" },
	{ "http://[::1]/", 0, "::1", true, AF_INET6, 80, "[::1]" },
	{ "http://::1:8701/x", -1, NULL, false, 0, 0, NULL },
	{ "http://[::1/x", -1, NULL, false, 0, 0, NULL },
	{ "http://[::1]x/", -1, NULL, false, 0, 0, NULL },
	{ "http://[127.0.0.1]/", -1, NULL, false, 0, 0, NULL },
	{ "http://[fe80::1%25eth0]/", -1, NULL, false, 0, 0, NULL },
	{ "http://user@host.example/", -1, NULL, false, 0, 0, NULL },
	{ "http://host.example:0/", -1, NULL, false, 0, 0, NULL },
	{ "http://host.example:65536/", -1, NULL, false, 0, 0, NULL },
	{ "http://host.example:/", -1, NULL, false, 0, 0, NULL },
	{ "http://127.1/", -1, NULL, false, 0, 0, NULL },
	{ "http://2130706433/", -1, NULL, false, 0, 0, NULL },
	{ "http://0x7f.0.0.1/", -1, NULL, false, 0, 0, NULL },
	{ "http://host..example/", -1, NULL, false, 0, 0, NULL },
	{ "http://host.example./", -1, NULL, false, 0, 0, NULL },
	{ "http://-host.example/", -1, NULL, false, 0, 0, NULL },
	{ "http://host_1.example/", -1, NULL, false, 0, 0, NULL },
	{ "http:///x", -1, NULL, false, 0, 0, NULL },
	{ "ftp://host.example/", -1, NULL, false, 0, 0, NULL },
};

START_TEST(test_endpoint_parse)
{
	const struct parse_case	*pc = &parse_cases[_i];
	struct endpoint		 ep;
	char			 err[256] = "";

	ck_assert_msg(endpoint_parse(pc->pc_url, &ep, err, sizeof(err)) == pc->pc_ret,
	    "%s: %s", pc->pc_url, err);
	if (pc->pc_ret != 0) {
		ck_assert_msg(err[0] != '\0', "%s: no reason", pc->pc_url);
		return;
	}
	ck_assert_str_eq(ep.ep_host, pc->pc_host);
	ck_assert_int_eq(ep.ep_literal, pc->pc_literal);
	if (pc->pc_literal)
		ck_assert_int_eq(ep.ep_addr.na_family, pc->pc_family);
	ck_assert_int_eq(ep.ep_port, pc->pc_port);
	ck_assert_str_eq(ep.ep_authority, pc->pc_authority);
	ck_assert_int_eq(ep.ep_tls, strncmp(pc->pc_url, "https:", 6) == 0);
}
END_TEST

static Suite *
fanout_suite(void)
{
	Suite	*su = suite_create("fanout");
	TCase	*tc = tcase_create("ownership");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_failure_inside_make_request);
	tcase_add_test(tc, test_ipv6_literals);
	tcase_add_test(tc, test_name_answered_at_once);
	tcase_add_test(tc, test_timeout_while_resolving);
	tcase_add_test(tc, test_free_while_resolving);
	tcase_add_test(tc, test_unusable_endpoint);
	suite_add_tcase(su, tc);

	tc = tcase_create("endpoint");
	tcase_add_loop_test(tc, test_endpoint_parse, 0, NELEM(parse_cases));
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	log_init("check_fanout", 0);
	return check_run(fanout_suite());
}
