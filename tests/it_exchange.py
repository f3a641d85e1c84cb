"""Integration: one consented, sealed and journaled exchange through the real
lianband and department simulator on loopback, and the refusals around it."""

import os
import sys
import tempfile
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d  # noqa: E402

ITEM = "birth_medical_certificate"
P = None


def setUpModule():
    global P
    P = lbtest.Platform()


def tearDownModule():
    if P is not None:
        P.close()


def dept_calls():
    return P.sim_stats()["total"]


def records():
    ck, leaves = P.journal()
    return [msgpack.unpackb(x, raw=False) for x in leaves]


def not_audit(recs):
    """The records other than the audit-read ones every auditor call adds."""
    return [r for r in recs if r["kind"] != "audit-read"]


class Exchange(unittest.TestCase):

    def test_01_health_without_certificate(self):
        status, body = P.request("GET", "/v1/health", client=None)
        self.assertEqual(status, 200)
        self.assertEqual(body["status"], "ok")
        self.assertIsInstance(body["journal_size"], int)

    def test_02_consented_exchange_is_sealed_and_journaled(self):
        token = P.issue(NEWBORN, [ITEM])
        before = dept_calls()
        status, body = P.exchange(NEWBORN, [ITEM], token)
        self.assertEqual(status, 200, body)
        self.assertEqual(dept_calls(), before + 1)
        self.assertEqual(len(b64d(body["exchange"])), 16)
        (r,) = body["results"]
        self.assertEqual(r["status"], "ok", r)
        doc = r["document"]
        self.assertEqual(doc["type"], ITEM)
        self.assertEqual(doc["holder"]["id"], NEWBORN)
        self.assertEqual(doc["holder"]["name"], "王子轩")
        self.assertEqual(doc["issuer"]["dept"], "nhc")
        self.assertEqual(doc["issued"], "2026-01-03")
        self.assertEqual(doc["fields"]["gender"], "male")
        self.assertEqual(doc["fields"]["birth_date"], "2026-01-01")
        # The document bytes are the canonical form of the document.
        doc_bytes = b64d(r["document_bytes"])
        self.assertEqual(lbtest.canonical(msgpack.unpackb(doc_bytes, raw=False)), doc_bytes)
        self.assertEqual(msgpack.unpackb(doc_bytes, raw=False), doc)
        # An outsider verifies the seal with the seal root alone ...
        claim, payload = lbtest.verify_seal(r["seal"], doc_bytes,
                                            os.path.join(P.pki, "seal-root.pem"))
        self.assertEqual(claim["item"], ITEM)
        self.assertEqual(claim["exch"], b64d(body["exchange"]))
        # ... and so does lianctl, offline.
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            import json
            json.dump(body, f, ensure_ascii=False)
        try:
            out = P.ctl("seal", "verify", f.name)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("seal ok", out.stdout)
        finally:
            os.unlink(f.name)
        # The journal holds the item record under the seq the answer names.
        recs = records()
        rec = recs[r["journal_seq"]]
        self.assertEqual(rec["kind"], "item")
        self.assertEqual(rec["decision"], "allow")
        self.assertEqual(rec["code"], "ok")
        self.assertEqual(rec["consumer"], "newborn")
        self.assertEqual(rec["dept"], "nhc")
        self.assertEqual(rec["exch"], b64d(body["exchange"]))
        import hashlib
        self.assertEqual(rec["doc"], hashlib.sha256(doc_bytes).digest())
        self.assertEqual(rec["claim"], hashlib.sha256(b64d(r["seal"]["claim"])).digest())
        self.assertNotIn(NEWBORN.encode(), b"".join(lbtest.canonical(x) for x in recs),
                         "a raw ID number reached the journal")

    def test_03_journal_verifies_independently_and_with_lianctl(self):
        ck, leaves = P.journal()
        self.assertGreater(ck["size"], 0)
        lbtest.verify_checkpoint(ck, leaves, os.path.join(P.pki, "journal", "checkpoint.pem"))
        out = P.ctl("journal", "verify", client="auditor-audit1")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def refused(self, token, code, status, client="consumer-newborn", sub=NEWBORN):
        size = P.journal()[0]["size"]
        before = dept_calls()
        st, body = P.exchange(sub, [ITEM], token, client=client)
        self.assertEqual(st, status, body)
        self.assertEqual(body["error"]["code"], code, body)
        self.assertTrue(body["error"]["message"])
        self.assertEqual(dept_calls(), before, "a refused exchange reached the department")
        recs = records()
        new = not_audit(recs[size:])
        self.assertTrue(any(r["kind"] == "deny" and r["code"] == code for r in new), new)
        self.assertFalse(any(r.get("decision") == "allow" for r in new), new)
        return body

    def test_04_replayed_token_is_refused(self):
        token = P.issue(NEWBORN, [ITEM])
        st, body = P.exchange(NEWBORN, [ITEM], token)
        self.assertEqual(st, 200, body)
        self.refused(token, "consent_replayed", 409)

    def test_05_token_of_another_consumer_is_refused(self):
        token = P.issue(NEWBORN, [ITEM], azp="school")
        self.refused(token, "consent_wrong_consumer", 403)

    def test_06_expired_token_is_refused(self):
        now = int(time.time())
        token = P.issue(NEWBORN, [ITEM], iat=now - 900, exp=now - 600)
        self.refused(token, "consent_expired", 403)

    def test_07_missing_consent(self):
        size = P.journal()[0]["size"]
        st, body = P.request("POST", "/v1/exchanges", {
            "bundle": "newborn", "requests": [{"subject": NEWBORN, "items": [ITEM]}]})
        self.assertEqual(st, 401, body)
        self.assertEqual(body["error"]["code"], "consent_missing")
        self.assertFalse(any(r.get("decision") == "allow" for r in not_audit(records()[size:])))

    def test_08_bad_input_changes_nothing(self):
        # Auditor reads journal themselves, so count the other records.
        before = len(not_audit(records()))
        cases = [
            (dict(body=b"{not json", ctype="application/json"), 400, "bad_request"),
            (dict(body=b"\xc1\x00", ctype="application/msgpack"), 400, "bad_request"),
            (dict(body=b"\x92\x01", ctype="application/msgpack"), 400, "bad_request"),
            (dict(body={"bundle": 7, "requests": []}), 400, "bad_request"),
            (dict(body={"bundle": "newborn", "requests": [{"subject": NEWBORN}]}),
             400, "bad_request"),
        ]
        for kw, status, code in cases:
            st, body = P.request("POST", "/v1/exchanges", **kw)
            self.assertEqual((st, body["error"]["code"]), (status, code), kw)
        st, body = P.request("GET", "/v1/no/such/route")
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))
        st, body = P.request("POST", "/v1/exchanges", {"bundle": "newborn", "requests": []},
                             client="auditor-audit1")
        self.assertEqual((st, body["error"]["code"]), (403, "forbidden_role"))
        st, body = P.request("GET", "/v1/journal/checkpoint")
        self.assertEqual((st, body["error"]["code"]), (403, "forbidden_role"))
        st, body = P.request("POST", "/v1/exchanges", {"bundle": "newborn", "requests": []},
                             client=None)
        self.assertEqual((st, body["error"]["code"]), (401, "unauthenticated"))
        self.assertEqual(len(not_audit(records())), before, "bad input was journaled")
        st, body = P.request("GET", "/v1/health", client=None)
        self.assertEqual(st, 200)

    def test_09_msgpack_in_and_out(self):
        token = P.issue(NEWBORN, [ITEM])
        body = msgpack.packb({"bundle": "newborn", "requests": [
            {"subject": NEWBORN, "items": [ITEM], "consent": b64d(token)}]}, use_bin_type=True)
        st, r = P.request("POST", "/v1/exchanges", body=body, ctype="application/msgpack",
                          accept="application/msgpack")
        self.assertEqual(st, 200, r)
        (res,) = r["results"]
        self.assertEqual(res["status"], "ok")
        self.assertIsInstance(res["document_bytes"], bytes)
        self.assertEqual(msgpack.unpackb(res["document_bytes"], raw=False), res["document"])

    def test_10_unknown_client_ca_is_unauthenticated(self):
        d = tempfile.mkdtemp()
        key, crt = os.path.join(d, "k.pem"), os.path.join(d, "c.pem")
        import subprocess
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                        "-days", "1", "-subj", "/OU=consumer/CN=newborn"],
                       check=True, capture_output=True)
        st, body = P.request("POST", "/v1/exchanges", {"bundle": "newborn", "requests": []},
                             client=None, certfile=crt, keyfile=key)
        self.assertEqual((st, body["error"]["code"]), (401, "unauthenticated"))

    def test_11_sigterm_commits_and_restart_continues_the_tree(self):
        ck, leaves = P.journal()
        self.assertEqual(P.stop_gateway(), 0)
        P.port = P.start_gateway()
        ck2, leaves2 = P.journal()
        self.assertEqual(leaves2[:len(leaves)], leaves)
        token = P.issue(NEWBORN, [ITEM])
        st, body = P.exchange(NEWBORN, [ITEM], token)
        self.assertEqual(st, 200, body)
        ck3, leaves3 = P.journal()
        self.assertEqual(leaves3[:len(leaves)], leaves)
        lbtest.verify_checkpoint(ck3, leaves3, os.path.join(P.pki, "journal", "checkpoint.pem"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
