"""Integration: the nodes of a cluster witness each other's journals
(docs/audit.md, "A cluster's journals").  Three nodes started with --node
and --peers: each signs its checkpoints as lianban-demo/NODE, and each
node's latest checkpoint gets cosigned by both peers (the cosignatures
checked here independently: signature, origin, size, root, witness).  Then
node 2's journal is replaced offline by a rewritten history that is longer
than the one its peers saw, while node 1 is down too: once both are back,
node 1 (from the reference it kept on disk) and node 3 report node 2
inconsistent (witness route with both signed checkpoints as evidence,
metric, log), and lianctl journal verify --cluster fails naming node 2."""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbpeers  # noqa: E402
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d  # noqa: E402
from cryptography import x509  # noqa: E402

ITEM = "birth_medical_certificate"
GATEWAY = "lianban-demo"
C = None


def setUpModule():
    global C
    C = lbpeers.Cluster(3)


def tearDownModule():
    if C is not None:
        C.close()


def exchange_ok(node, sub):
    st, body = node.exchange(sub, [ITEM], node.issue(sub, [ITEM]))
    assert st == 200 and body["results"][0]["status"] == "ok", body


def checkpoint(node):
    """The node's latest checkpoint, read as a cluster node (not journaled)."""
    st, ck = node.as_node("GET", "/v1/journal/checkpoint", "node1" if node.name != "node1"
                          else "node2")
    assert st == 200, ck
    return ck


def witness(node):
    st, w = node.request("GET", "/v1/journal/witness", client="auditor-audit1")
    assert st == 200, w
    return {p["node"]: p for p in w["peers"]}


def cosignatures(node, origin, size):
    st, r = node.request("GET", "/v1/journal/cosignatures?origin=%s&size=%d" % (origin, size),
                         client="auditor-audit1")
    assert st == 200, r
    return r["cosignatures"]


def check_cosignature(env, origin, size, root, witness_origin):
    """An outsider's check of a cosignature envelope."""
    prot, payload, tbs, sig = lbtest.open_envelope(env, "cosignature")
    with open(os.path.join(C.nodes[0].pki, "journal", "checkpoint.pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    assert prot["kid"] == lbtest.kid_of(cert)
    lbtest.verify_sig(cert.public_key(), prot["alg"], tbs, sig)
    assert sorted(payload) == ["origin", "root", "size", "t_ms", "witness"], payload
    assert payload["origin"] == origin and payload["size"] == size, payload
    assert payload["root"] == root, payload
    assert payload["witness"] == witness_origin, payload


class T1Witness(unittest.TestCase):

    def test_1_origin_names_the_node(self):
        for node in C.nodes:
            prot, payload, _, _ = lbtest.open_envelope(b64d(checkpoint(node)["envelope"]),
                                                       "checkpoint")
            self.assertEqual(payload["origin"], "%s/%s" % (GATEWAY, node.name))
        # lianctl checks the signature and prints the origin.
        out = C.nodes[1].ctl("journal", "checkpoint", client="auditor-audit1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("origin:    %s/node2" % GATEWAY, out.stdout)

    def test_2_every_checkpoint_cosigned_by_both_peers(self):
        for node in C.nodes:
            exchange_ok(node, NEWBORN)
        for node in C.nodes:
            origin = "%s/%s" % (GATEWAY, node.name)

            def cosigned():
                ck = checkpoint(node)
                got = {}
                for other in C.nodes:
                    if other is node:
                        continue
                    cs = cosignatures(other, origin, ck["size"])
                    if len(cs) != 1:
                        return None
                    got[other.name] = (cs[0], ck)
                return got
            got = lbpeers.wait_for("both peers to cosign %s" % node.name, cosigned)
            for wname, (cs, ck) in got.items():
                self.assertGreater(ck["size"], 0)
                self.assertEqual(cs["witness"], "%s/%s" % (GATEWAY, wname))
                check_cosignature(b64d(cs["envelope"]), origin, ck["size"], b64d(ck["root"]),
                                  "%s/%s" % (GATEWAY, wname))
        for node in C.nodes:
            for name, p in witness(node).items():
                self.assertEqual(p["status"], "consistent", p)
                self.assertEqual(p["origin"], "%s/%s" % (GATEWAY, name))
            self.assertGreaterEqual(lbpeers.metric(node.metrics(),
                                    "lianban_witness_cosigned_total",
                                    peer=[n for n in ("node1", "node2", "node3")
                                          if n != node.name][0]), 1)

    def test_3_cosignature_route_and_roles(self):
        st, r = C.nodes[0].request("GET", "/v1/journal/cosignatures", client="auditor-audit1")
        self.assertEqual(st, 400, r)
        self.assertEqual(r["error"]["code"], "bad_request")
        # The witness routes are for auditors and nodes, not consumers.
        st, r = C.nodes[0].request("GET", "/v1/journal/witness", client="consumer-newborn")
        self.assertEqual(st, 403, r)
        # A node's certificate opens journal reads and witness routes only.
        st, r = C.nodes[0].as_node("GET", "/v1/policies", "node2")
        self.assertEqual(st, 403, r)
        self.assertEqual(r["error"]["code"], "forbidden_role")
        st, r = C.nodes[0].as_node("GET", "/v1/journal/witness", "node2")
        self.assertEqual(st, 200, r)
        # Only a node named in --peers: the gateway's identity towards departments
        # (OU gateway, CN lianban-demo) is no peer.
        pki = C.nodes[0].pki
        st, r = C.nodes[0].request("GET", "/v1/journal/checkpoint",
                                   certfile=os.path.join(pki, "gateway-client.pem"),
                                   keyfile=os.path.join(pki, "gateway-client.key"))
        self.assertEqual(st, 403, r)
        self.assertIn("not a peer", r["error"]["message"])

    def test_4_cluster_verify_passes(self):
        out = C.nodes[0].ctl("journal", "verify", "--cluster", client="auditor-audit1")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        for name in ("node1", "node2", "node3"):
            self.assertIn("%s/%s" % (GATEWAY, name), out.stdout)
        self.assertIn("cosignatures", out.stdout)
        out = C.nodes[2].ctl("--json", "journal", "verify", "--cluster", client="auditor-audit1")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        j = json.loads(out.stdout)
        self.assertTrue(j["verified"])
        self.assertEqual(sorted(n["checkpoint"]["origin"] for n in j["nodes"]),
                         ["%s/%s" % (GATEWAY, n) for n in ("node1", "node2", "node3")])
        self.assertGreaterEqual(j["cosignatures"], 6)
        self.assertGreaterEqual(j["exchanges"], 3)

    def test_5_rewritten_journal_is_caught(self):
        n1, n2, n3 = C.nodes
        n2.stop_gateway()
        seen = {w.name: witness(w)["node2"]["verified"]["size"] for w in (n1, n3)}
        old_size = max(seen.values())
        # Node 1 goes down as well: it must catch node 2 from what it kept on disk.
        n1.stop_gateway()
        # Node 2's journal rewritten offline: a fresh history on its own, longer than
        # the one its peers saw, signed with the same key and origin.
        os.rename(n2.data, n2.data + ".old")
        n2.port = n2.start_gateway(extra=["--listen", "127.0.0.1:0", "--peers", ""])
        while n2.request("GET", "/v1/journal/checkpoint",
                         client="auditor-audit1")[1]["size"] <= old_size:
            exchange_ok(n2, NEWBORN)
        n2.stop_gateway()
        n2.port = n2.start_gateway()
        n1.port = n1.start_gateway()
        for w in (n1, n3):
            p = lbpeers.wait_for("%s to find node2 inconsistent" % w.name,
                                   lambda: (lambda p: p if p["status"] == "inconsistent"
                                            else None)(witness(w)["node2"]))
            ev = p["evidence"]
            self.assertEqual(ev["seen"]["size"], seen[w.name])
            self.assertGreater(ev["shown"]["size"], old_size)
            self.assertEqual(ev["seen"]["origin"], "%s/node2" % GATEWAY)
            self.assertEqual(ev["shown"]["origin"], "%s/node2" % GATEWAY)
            self.assertIn("consistency proof", ev["reason"])
            # The reference stays the checkpoint node 2 showed before.
            self.assertEqual(p["verified"]["size"], seen[w.name])
            self.assertEqual(lbpeers.metric(w.metrics(), "lianban_witness_inconsistent_total",
                                              peer="node2"), 1)
            log = w.gw_log_text()
            self.assertRegex(log, r"peer node2 .*inconsistent.*%d records before, %d now"
                             % (seen[w.name], ev["shown"]["size"]))
        # Node 2 itself sees nothing wrong with its peers.
        for name, p in witness(n2).items():
            self.assertNotEqual(p["status"], "inconsistent", p)
        out = n3.ctl("journal", "verify", "--cluster", client="auditor-audit1")
        self.assertNotEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("node2", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
