"""Integration: reads that answer for the whole cluster (docs/audit.md, "A
cluster's journals").  Three nodes with --node and --peers, an exchange for
the newborn on each: the auditor's records query and the citizen's access
report, asked of any node, hold the records of all three, each naming its
node, ordered by time, paged with a cursor that spans the nodes; the
citizen's token is claimed once, by the node asked, while the peers are
asked by pseudonym as role gateway (and journal that read); with a node
down, the answer names it unreachable and still holds the others'
records; scope=node answers exactly as a single node does."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbpeers  # noqa: E402
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d  # noqa: E402
from cryptography import x509  # noqa: E402

ITEM = "birth_medical_certificate"
NODES = ["node1", "node2", "node3"]
C = None
EXCH = {}       # node name -> the exchange id (base64url) made there


def setUpModule():
    global C
    C = lbpeers.Cluster(3)
    for node in C.nodes:
        st, body = node.exchange(NEWBORN, [ITEM], node.issue(NEWBORN, [ITEM]))
        assert st == 200 and body["results"][0]["status"] == "ok", body
        EXCH[node.name] = body["exchange"]


def tearDownModule():
    if C is not None:
        C.close()


def records(node, query):
    st, r = node.request("GET", "/v1/journal/records?" + query, client="auditor-audit1")
    assert st == 200, r
    return r


def access_token():
    return C.nodes[0].issue(NEWBORN, ["access_report"], azp="citizen", bundle="access_report")


def report(node, tok, query=""):
    return node.request("GET", "/v1/subjects/me/accesses" + query, client="consumer-citizen",
                        headers={"Lianban-Consent": tok})


class T1ClusterReads(unittest.TestCase):

    def test_1_records_of_every_node(self):
        for asked in C.nodes:
            r = records(asked, "subject=%s&limit=1000" % NEWBORN)
            self.assertEqual(sorted(r["nodes"]["answered"]), NODES, r["nodes"])
            self.assertEqual(r["nodes"]["unreachable"], [])
            self.assertIsNone(r["next"])
            by_node = {}
            for e in r["records"]:
                by_node.setdefault(e["node"], set()).add(e["record"].get("exch"))
            for name in NODES:
                self.assertIn(EXCH[name], by_node.get(name, set()), (name, by_node))
            times = [e["record"]["t_ms"] for e in r["records"]]
            self.assertEqual(times, sorted(times))
            # The merge is exactly the union of every node's own answer.
            want = set()
            for node in C.nodes:
                own = records(node, "subject=%s&limit=1000&scope=node" % NEWBORN)
                want |= {(node.name, e["seq"]) for e in own["records"]
                         if e["seq"] <= max([x["seq"] for x in r["records"]
                                             if x["node"] == node.name] + [-1])}
            self.assertEqual({(e["node"], e["seq"]) for e in r["records"]}, want)

    def test_2_cursor_spans_the_nodes(self):
        whole = records(C.nodes[0], "consumer=newborn&limit=1000")
        self.assertIsNone(whole["next"])
        got, after, pages = [], None, 0
        while True:
            q = "consumer=newborn&limit=2" + ("&after=" + after if after else "")
            page = records(C.nodes[1], q)
            self.assertLessEqual(len(page["records"]), 2)
            got += [(e["node"], e["seq"]) for e in page["records"]]
            pages += 1
            self.assertLess(pages, 100)
            if page["next"] is None:
                break
            after = page["next"]
            self.assertRegex(after, r"^node\d:\d+(,node\d:\d+)*$")
        self.assertEqual(len(got), len(set(got)))
        self.assertEqual(set(got), {(e["node"], e["seq"]) for e in whole["records"]})
        # A page number of a single node is no cursor of a cluster.
        st, r = C.nodes[0].request("GET", "/v1/journal/records?after=3",
                                   client="auditor-audit1")
        self.assertEqual(st, 400, r)
        self.assertEqual(r["error"]["code"], "bad_request")

    def test_3_scope_node_answers_as_a_single_node(self):
        r = records(C.nodes[2], "subject=%s&scope=node" % NEWBORN)
        self.assertNotIn("nodes", r)
        for e in r["records"]:
            self.assertNotIn("node", e)
            self.assertEqual(sorted(e), ["leaf", "record", "seq"])
        # Only a node may ask by pseudonym or newest first.
        st, r = C.nodes[2].request("GET", "/v1/journal/records?scope=node&order=newest",
                                   client="auditor-audit1")
        self.assertEqual(st, 400, r)

    def test_4_access_report_of_every_node(self):
        tok = access_token()
        st, r = report(C.nodes[1], tok)
        self.assertEqual(st, 200, r)
        self.assertEqual(sorted(r["nodes"]["answered"]), NODES)
        seen = {(e["node"], e.get("exchange")) for e in r["accesses"]}
        for name in NODES:
            self.assertIn((name, EXCH[name]), seen, r["accesses"])
        times = [e["t_ms"] for e in r["accesses"]]
        self.assertEqual(times, sorted(times, reverse=True))
        # The token was claimed once, by node 2: it is spent there ...
        st, again = report(C.nodes[1], tok)
        self.assertEqual(st, 409, again)
        self.assertEqual(again["error"]["code"], "consent_replayed")
        # ... while the peers were asked by pseudonym, as node 2, and journaled it.
        for node in (C.nodes[0], C.nodes[2]):
            own = records(node, "subject=%s&kind=audit-read&scope=node&limit=1000" % NEWBORN)
            self.assertTrue(any(e["record"].get("item") == "records" for e in own["records"]),
                            own)
            self.assertFalse(any(e["record"].get("bundle") == "access_report"
                                 for e in own["records"]), own)
        # A node's certificate does not open the citizen's route.
        st, r = C.nodes[0].as_node("GET", "/v1/subjects/me/accesses", "node2")
        self.assertEqual(st, 403, r)

    def test_5_access_report_pages(self):
        tok = access_token()
        st, first = report(C.nodes[0], tok, "?limit=2")
        self.assertEqual(st, 200, first)
        self.assertEqual(len(first["accesses"]), 2)
        self.assertRegex(first["next"], r"^node\d:\d+(,node\d:\d+)*$")
        st, second = report(C.nodes[0], access_token(), "?limit=2&before=" + first["next"])
        self.assertEqual(st, 200, second)
        a = {(e["node"], e["seq"]) for e in first["accesses"]}
        b = {(e["node"], e["seq"]) for e in second["accesses"]}
        self.assertFalse(a & b)
        self.assertGreaterEqual(min(e["t_ms"] for e in first["accesses"]),
                                max(e["t_ms"] for e in second["accesses"]))

    def test_5b_checkpoint_of_every_node(self):
        st, r = C.nodes[0].request("GET", "/v1/journal/checkpoints", client="auditor-audit1")
        self.assertEqual(st, 200, r)
        self.assertEqual(sorted(r["nodes"]["answered"]), NODES)
        with open(os.path.join(C.nodes[0].pki, "journal", "checkpoint.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.assertEqual(sorted(ck["node"] for ck in r["checkpoints"]), NODES)
        for ck in r["checkpoints"]:
            prot, payload, tbs, sig = lbtest.open_envelope(b64d(ck["envelope"]), "checkpoint")
            lbtest.verify_sig(cert.public_key(), prot["alg"], tbs, sig)
            self.assertEqual(payload["origin"], "lianban-demo/" + ck["node"])
            self.assertEqual(payload["size"], ck["size"])
            self.assertEqual(payload["root"], b64d(ck["root"]))

    def test_6_a_node_down(self):
        n3 = C.nodes[2]
        n3.stop_gateway()
        r = records(C.nodes[0], "subject=%s&limit=1000" % NEWBORN)
        self.assertEqual(r["nodes"]["unreachable"], ["node3"])
        self.assertEqual(sorted(r["nodes"]["answered"]), ["node1", "node2"])
        names = {e["node"] for e in r["records"]}
        self.assertEqual(names, {"node1", "node2"})
        st, rep = report(C.nodes[1], access_token())
        self.assertEqual(st, 200, rep)
        self.assertEqual(rep["nodes"]["unreachable"], ["node3"])
        seen = {(e["node"], e.get("exchange")) for e in rep["accesses"]}
        self.assertIn(("node1", EXCH["node1"]), seen)
        self.assertIn(("node2", EXCH["node2"]), seen)
        self.assertIn("peer node3", C.nodes[0].gw_log_text())
        st, r = C.nodes[1].request("GET", "/v1/journal/checkpoints", client="auditor-audit1")
        self.assertEqual(st, 200, r)
        self.assertEqual(r["nodes"]["unreachable"], ["node3"])
        self.assertEqual(sorted(ck["node"] for ck in r["checkpoints"]), ["node1", "node2"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
