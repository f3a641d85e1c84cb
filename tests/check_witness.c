/*
 * check_witness.c - the pieces of a cluster's witnessing (docs/audit.md):
 * the --peers list (peer.c), checkpoint origins and the cosignature format
 * (cosign.c), the cluster cursor (cluster.c) and the journal's witness
 * database (journal_witness.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "gateway.h"
#include "check_util.h"

static const uint8_t ROOT[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
	17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

START_TEST(test_peers_parse)
{
	struct peer	*pe;
	size_t		 n;
	char		 err[256];

	ck_assert_int_eq(peers_parse("node2=127.0.0.1:8444,node3=[::1]:8445", "node1", &pe, &n,
	    err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(pe[0].pe_node, "node2");
	ck_assert_str_eq(pe[0].pe_host, "127.0.0.1");
	ck_assert_int_eq(pe[0].pe_port, 8444);
	ck_assert_str_eq(pe[1].pe_node, "node3");
	ck_assert_str_eq(pe[1].pe_host, "::1");
	ck_assert_int_eq(pe[1].pe_port, 8445);
	free(pe);
	/* None is fine, and needs no node id. */
	ck_assert_int_eq(peers_parse("", "", &pe, &n, err, sizeof(err)), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_ptr_null(pe);
}
END_TEST

/* Each bad list fails, with a sentence that says why. */
START_TEST(test_peers_refused)
{
	static const struct {
		const char	*list, *self, *why;
	} bad[] = {
		{ "node2=127.0.0.1", "node1", "port" },
		{ "node2=localhost:8444", "node1", "IP address" },
		{ "node1=127.0.0.1:8444", "node1", "this node itself" },
		{ "node2=127.0.0.1:1,node2=127.0.0.1:2", "node1", "named twice" },
		{ "node2=127.0.0.1:1,", "node1", "NODE_ID=HOST:PORT" },
		{ "no de=127.0.0.1:1", "node1", "NODE_ID=HOST:PORT" },
		{ "=127.0.0.1:1", "node1", "NODE_ID=HOST:PORT" },
		{ "node2=127.0.0.1:0", "node1", "port" },
		{ "node2=127.0.0.1:8444", "", "no id" },
		{ "n1=1.1.1.1:1,n2=1.1.1.1:1,n3=1.1.1.1:1,n4=1.1.1.1:1,n5=1.1.1.1:1,n6=1.1.1.1:1,"
		  "n7=1.1.1.1:1,n8=1.1.1.1:1,n9=1.1.1.1:1,n10=1.1.1.1:1,n11=1.1.1.1:1,"
		  "n12=1.1.1.1:1,n13=1.1.1.1:1,n14=1.1.1.1:1,n15=1.1.1.1:1,n16=1.1.1.1:1,"
		  "n17=1.1.1.1:1", "node1", "more than 16" },
	};
	struct peer	*pe;
	size_t		 n, i;
	char		 err[256];

	for (i = 0; i < NELEM(bad); i++) {
		err[0] = '\0';
		ck_assert_msg(peers_parse(bad[i].list, bad[i].self, &pe, &n, err,
		    sizeof(err)) == -1, "%s was accepted", bad[i].list);
		ck_assert_ptr_null(pe);
		ck_assert_msg(strstr(err, bad[i].why) != NULL, "%s: \"%s\" does not say \"%s\"",
		    bad[i].list, err, bad[i].why);
	}
}
END_TEST

START_TEST(test_origin)
{
	char	buf[LB_ORIGIN_MAX], id[LB_ID_MAX];

	ck_assert_int_eq(cosign_origin("lianban-demo", "", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "lianban-demo");
	ck_assert_int_eq(cosign_origin("lianban-demo", "node2", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "lianban-demo/node2");
	/* The longest ids fit together. */
	memset(id, 'a', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	ck_assert_int_eq(cosign_origin(id, id, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(strlen(buf), 2 * (LB_ID_MAX - 1) + 1);
	ck_assert_int_eq(cosign_origin(id, id, buf, 64), -1);
}
END_TEST

static EVP_PKEY *
p256(void)
{
	EVP_PKEY	*k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

	ck_assert_ptr_nonnull(k);
	return k;
}

static void
cosig_fill(struct cosig *co, const char *origin, const char *witness)
{
	memset(co, 0, sizeof(*co));
	snprintf(co->co_origin, sizeof(co->co_origin), "%s", origin);
	snprintf(co->co_witness, sizeof(co->co_witness), "%s", witness);
	co->co_size = 42;
	memcpy(co->co_root, ROOT, 32);
	co->co_t_ms = 1767225600123ULL;
}

START_TEST(test_cosign_round_trip)
{
	EVP_PKEY	*key = p256(), *other = p256();
	X509		*cert = check_cert(key, "/CN=lianban-demo", 1, NULL, NULL, false),
			*ocert = check_cert(other, "/CN=other", 2, NULL, NULL, false);
	uint8_t		 kid[32];
	struct cosig	 co, got;
	struct ckpt_view cv;
	msgpack_sbuffer	 sb;
	msgpack_zone	 z;
	struct envelope	 env;
	const char	*why;
	char		 err[256];

	ck_assert_int_eq(key_id_cert(cert, kid), 0);
	cosig_fill(&co, "lianban-demo/node1", "lianban-demo/node2");
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(cosign_make(key, kid, &co, &sb), 0);
	ck_assert_int_eq(cosign_check((uint8_t *)sb.data, sb.size, cert, &got, err, sizeof(err)),
	    0);
	ck_assert_str_eq(got.co_origin, "lianban-demo/node1");
	ck_assert_str_eq(got.co_witness, "lianban-demo/node2");
	ck_assert_uint_eq(got.co_size, 42);
	ck_assert_uint_eq(got.co_t_ms, 1767225600123ULL);
	ck_bytes_eq(got.co_root, 32, ROOT, 32);
	/* The contract's envelope: typ "cosignature", canonical, five payload fields. */
	msgpack_zone_init(&z, 1024);
	ck_assert_int_eq(envelope_parse(sb.data, sb.size, &z, "cosignature", &env, &why), 0);
	ck_assert_uint_eq(env.env_claims.via.map.size, 5);
	ck_assert(mpk_is_canonical(env.env_payload, env.env_payload_len));
	msgpack_zone_destroy(&z);
	/* Another key's certificate does not verify it. */
	ck_assert_int_eq(cosign_check((uint8_t *)sb.data, sb.size, ocert, &got, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "another key"));
	/* It is not a checkpoint either. */
	ck_assert_int_eq(cosign_ckpt_check((uint8_t *)sb.data, sb.size, cert, &cv, err,
	    sizeof(err)), -1);
	/* Any changed byte of the signed part breaks it. */
	((uint8_t *)sb.data)[sb.size - 80] ^= 1;
	ck_assert_int_eq(cosign_check((uint8_t *)sb.data, sb.size, cert, &got, err,
	    sizeof(err)), -1);
	msgpack_sbuffer_destroy(&sb);
	/* A witness cannot cosign its own checkpoint. */
	cosig_fill(&co, "lianban-demo/node1", "lianban-demo/node1");
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(cosign_make(key, kid, &co, &sb), 0);
	ck_assert_int_eq(cosign_check((uint8_t *)sb.data, sb.size, cert, &got, err,
	    sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "names itself"));
	msgpack_sbuffer_destroy(&sb);
	/* Nothing to sign without an origin or a witness. */
	cosig_fill(&co, "", "lianban-demo/node1");
	msgpack_sbuffer_init(&sb);
	ck_assert_int_eq(cosign_make(key, kid, &co, &sb), -1);
	msgpack_sbuffer_destroy(&sb);
	X509_free(cert);
	X509_free(ocert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
}
END_TEST

/* A cosignature's payload with a field too many or too few is refused. */
START_TEST(test_cosign_payload_shape)
{
	EVP_PKEY	*key = p256();
	X509		*cert = check_cert(key, "/CN=lianban-demo", 1, NULL, NULL, false);
	uint8_t		 kid[32];
	msgpack_zone	 z;
	msgpack_sbuffer	 pay, env;
	struct mpk_map	 m;
	struct cosig	 got;
	char		 err[256];
	int		 extra;

	ck_assert_int_eq(key_id_cert(cert, kid), 0);
	for (extra = 0; extra < 2; extra++) {
		msgpack_zone_init(&z, 512);
		msgpack_sbuffer_init(&pay);
		msgpack_sbuffer_init(&env);
		mpk_map_init(&m, &z, 6);
		mpk_map_put(&m, "origin", mpk_str("lianban-demo/node1"));
		mpk_map_put(&m, "size", mpk_uint(3));
		mpk_map_put(&m, "root", mpk_bin(ROOT, 32));
		mpk_map_put(&m, "t_ms", mpk_uint(1));
		if (extra)
			mpk_map_put(&m, "witness", mpk_str("lianban-demo/node2"));
		if (extra)
			mpk_map_put(&m, "note", mpk_str("x"));
		ck_assert_int_eq(mpk_pack(&m.mm_obj, &pay, false), 0);
		ck_assert_int_eq(envelope_sign(key, kid, "cosignature", NULL, 0, pay.data,
		    pay.size, &env), 0);
		ck_assert_int_eq(cosign_check((uint8_t *)env.data, env.size, cert, &got, err,
		    sizeof(err)), -1);
		ck_assert_ptr_nonnull(strstr(err, "payload"));
		msgpack_sbuffer_destroy(&pay);
		msgpack_sbuffer_destroy(&env);
		msgpack_zone_destroy(&z);
	}
	X509_free(cert);
	EVP_PKEY_free(key);
}
END_TEST

START_TEST(test_cluster_cursor)
{
	uint64_t	seq = 0;
	bool		has;

	ck_assert_int_eq(cluster_cursor("node1:12,node2:0,node3:40", "node2", &seq, &has), 0);
	ck_assert(has);
	ck_assert_uint_eq(seq, 0);
	ck_assert_int_eq(cluster_cursor("node1:12,node3:40", "node3", &seq, &has), 0);
	ck_assert(has);
	ck_assert_uint_eq(seq, 40);
	ck_assert_int_eq(cluster_cursor("node1:12", "node2", &seq, &has), 0);
	ck_assert(!has);
	/* A node whose id starts another's is not confused with it. */
	ck_assert_int_eq(cluster_cursor("node10:7", "node1", &seq, &has), 0);
	ck_assert(!has);
	ck_assert_int_eq(cluster_cursor("12", "node1", &seq, &has), -1);
	ck_assert_int_eq(cluster_cursor("node1:", "node1", &seq, &has), -1);
	ck_assert_int_eq(cluster_cursor("node1:1x", "node1", &seq, &has), -1);
	ck_assert_int_eq(cluster_cursor("node1:1,", "node1", &seq, &has), -1);
	ck_assert_int_eq(cluster_cursor("no de:1", "node1", &seq, &has), -1);
}
END_TEST

struct wit_seen {
	int	ws_done;
	int	ws_status;
	char	ws_keys[8][32];
	int	ws_n;
};

static void
wit_done(void *arg, int status, uint64_t first_seq)
{
	struct wit_seen	*ws = arg;

	(void)first_seq;
	ws->ws_status |= status;
	ws->ws_done++;
}

static int
wit_each(void *arg, const uint8_t *key, size_t keylen, const uint8_t *val, size_t vallen)
{
	struct wit_seen	*ws = arg;

	ck_assert_int_lt(ws->ws_n, 8);
	ck_assert_uint_eq(vallen, 1);
	snprintf(ws->ws_keys[ws->ws_n++], 32, "%.*s=%c", (int)keylen, (const char *)key, val[0]);
	return 0;
}

/* Pairs of the witness database: stored by the writer, walked by prefix, kept on reopen. */
START_TEST(test_witness_store)
{
	char		 dir[] = "/tmp/check_witness.XXXXXX";
	EVP_PKEY	*key = p256();
	X509		*cert = check_cert(key, "/CN=" CHECK_ORIGIN, 1, NULL, NULL, false);
	struct event_base *base = event_base_new();
	struct journal	*j;
	struct wit_seen	 ws;
	static const char *const keys[] = { "pa/n1", "pa/n10", "ca/n1\001", "pa/n2" };
	size_t		 i;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	j = check_journal_open(dir, key, cert, 0);
	memset(&ws, 0, sizeof(ws));
	for (i = 0; i < NELEM(keys); i++)
		ck_assert_int_eq(journal_witness_put(j, base, (const uint8_t *)keys[i],
		    strlen(keys[i]), (const uint8_t *)"0" + 0, 1, wit_done, &ws), 0);
	/* The newer value of a key replaces the older one. */
	ck_assert_int_eq(journal_witness_put(j, base, (const uint8_t *)"pa/n2", 5,
	    (const uint8_t *)"9", 1, wit_done, &ws), 0);
	/* Empty keys and values are refused at once. */
	ck_assert_int_eq(journal_witness_put(j, base, (const uint8_t *)"", 0,
	    (const uint8_t *)"9", 1, wit_done, &ws), -1);
	ck_assert_int_eq(journal_witness_put(j, base, (const uint8_t *)"p", 1, NULL, 0,
	    wit_done, &ws), -1);
	check_run_until(base, &ws.ws_done, 5, 10000);
	ck_assert_int_eq(ws.ws_done, 5);
	ck_assert_int_eq(ws.ws_status, 0);
	/* Outside the Merkle log: no record was appended. */
	ck_assert_uint_eq(journal_size(j), 0);
	journal_close(j);

	j = check_journal_open(dir, key, cert, 0);
	ck_assert_int_eq(journal_witness_each(j, (const uint8_t *)"pa/n1", 5, wit_each, &ws), 0);
	ck_assert_int_eq(ws.ws_n, 2);
	ck_assert_str_eq(ws.ws_keys[0], "pa/n1=0");
	ck_assert_str_eq(ws.ws_keys[1], "pa/n10=0");
	ws.ws_n = 0;
	ck_assert_int_eq(journal_witness_each(j, (const uint8_t *)"p", 1, wit_each, &ws), 0);
	ck_assert_int_eq(ws.ws_n, 3);
	ck_assert_str_eq(ws.ws_keys[2], "pa/n2=9");
	ws.ws_n = 0;
	ck_assert_int_eq(journal_witness_each(j, (const uint8_t *)"x", 1, wit_each, &ws), 0);
	ck_assert_int_eq(ws.ws_n, 0);
	journal_close(j);
	event_base_free(base);
	X509_free(cert);
	EVP_PKEY_free(key);
	ck_assert_int_eq(check_rm_tree(dir), 0);
}
END_TEST

static Suite *
witness_suite(void)
{
	Suite	*s = suite_create("witness");
	TCase	*tc;

	tc = tcase_create("peers");
	tcase_add_test(tc, test_peers_parse);
	tcase_add_test(tc, test_peers_refused);
	tcase_add_test(tc, test_cluster_cursor);
	suite_add_tcase(s, tc);

	tc = tcase_create("cosignatures");
	tcase_add_test(tc, test_origin);
	tcase_add_test(tc, test_cosign_round_trip);
	tcase_add_test(tc, test_cosign_payload_shape);
	suite_add_tcase(s, tc);

	tc = tcase_create("store");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_witness_store);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return check_run(witness_suite());
}
