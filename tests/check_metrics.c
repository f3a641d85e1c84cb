/*
 * check_metrics.c - unit tests for the metrics of the daemon
 * (gateway/daemon/metrics.c): the exposition text of counters and
 * histograms, the bound on label sets and the quoting of label values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>
#include <event2/buffer.h>

#include "gateway.h"
#include "check_util.h"

/* The exposition text of every series, NUL-terminated; the caller frees it. */
static char *
render(void)
{
	struct evbuffer	*out = evbuffer_new();
	size_t		 n;
	char		*text;

	ck_assert_ptr_nonnull(out);
	metrics_render(out, NULL);
	n = evbuffer_get_length(out);
	text = malloc(n + 1);
	ck_assert_ptr_nonnull(text);
	evbuffer_remove(out, text, n);
	text[n] = '\0';
	evbuffer_free(out);
	return text;
}

static void
teardown(void)
{
	metrics_stop();
}

START_TEST(test_counter_and_histogram_text)
{
	const char	*ex[3] = { "newborn", "consumer-a", "ok" };
	const char	*dept[2] = { "nhc", "ok" };
	char		*text;

	metrics_count(METRICS_EXCHANGES, 2, ex);
	metrics_count(METRICS_EXCHANGES, 1, ex);
	metrics_observe(METRICS_DEPT_LATENCY, 0.003, dept);
	metrics_observe(METRICS_DEPT_LATENCY, 20, dept);
	text = render();
	ck_assert_ptr_nonnull(strstr(text, "# TYPE lianban_exchanges_total counter\n"));
	ck_assert_ptr_nonnull(strstr(text, "lianban_exchanges_total{bundle=\"newborn\","
	    "consumer=\"consumer-a\",code=\"ok\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "# TYPE lianban_department_request_seconds "
	    "histogram\n"));
	/* Buckets are cumulative; one observation is beyond the last bound. */
	ck_assert_ptr_nonnull(strstr(text, "lianban_department_request_seconds_bucket"
	    "{department=\"nhc\",le=\"0.0025\"} 0\n"));
	ck_assert_ptr_nonnull(strstr(text, "lianban_department_request_seconds_bucket"
	    "{department=\"nhc\",le=\"0.005\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "lianban_department_request_seconds_bucket"
	    "{department=\"nhc\",le=\"10\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, "lianban_department_request_seconds_bucket"
	    "{department=\"nhc\",le=\"+Inf\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "lianban_department_request_seconds_count"
	    "{department=\"nhc\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "lianban_department_request_seconds_sum"
	    "{department=\"nhc\"} 20.003\n"));
	free(text);
}
END_TEST

START_TEST(test_label_sets_are_bounded)
{
	const char	*v[3] = { "newborn", NULL, "ok" };
	char		 id[32], *text, *p;
	int		 i, n = 0;

	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "consumer-%d", i);
		v[1] = id;
		metrics_count(METRICS_EXCHANGES, 1, v);
	}
	/* A label set kept before the cap still counts on its own. */
	v[1] = "consumer-0";
	metrics_count(METRICS_EXCHANGES, 1, v);
	text = render();
	for (p = text; (p = strstr(p, "\nlianban_exchanges_total{")) != NULL; p++)
		n++;
	ck_assert_int_eq(n, 257);
	ck_assert_ptr_nonnull(strstr(text, "consumer=\"consumer-0\",code=\"ok\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "consumer=\"consumer-255\",code=\"ok\"} 1\n"));
	ck_assert_ptr_null(strstr(text, "consumer-256"));
	ck_assert_ptr_nonnull(strstr(text, "lianban_exchanges_total{bundle=\"other\","
	    "consumer=\"other\",code=\"other\"} 44\n"));
	free(text);
}
END_TEST

START_TEST(test_label_values_are_quoted)
{
	const char	*v[1] = { "a\"b\\c\nd\xe4" };
	char		*text;

	metrics_count(METRICS_TLS_FAILURES, 1, v);
	text = render();
	ck_assert_ptr_nonnull(strstr(text, "lianban_tls_failures_total{reason="
	    "\"a\\\"b\\\\c_d_\"} 1\n"));
	free(text);
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite	*su = suite_create("metrics");
	TCase	*tc = tcase_create("exposition");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_counter_and_histogram_text);
	tcase_add_test(tc, test_label_sets_are_bounded);
	tcase_add_test(tc, test_label_values_are_quoted);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	log_init("check_metrics", 0);
	return check_run(metrics_suite());
}
