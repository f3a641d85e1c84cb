"""Integration: the audit journal as an auditor sees it (docs/contract.md §7, 8):
record queries with every filter and their cursors, RFC 9162 proofs checked
by an independent Python verifier, journaled auditor reads, and every command
of docs/audit.md (lianctl journal checkpoint, pull and verify).  Crash safety
and tamper evidence are in it_crash.py."""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import FATHER, MOTHER, NEWBORN, b64d  # noqa: E402

ITEM = "birth_medical_certificate"
AUDITOR = "auditor-audit1"
P = None
EXCH = {}       # subject -> exchange ids answered 200


def setUpModule():
    global P
    P = lbtest.Platform()
    for sub in (NEWBORN, NEWBORN, NEWBORN, MOTHER):
        token = P.issue(sub, [ITEM])
        st, body = P.exchange(sub, [ITEM], token)
        # The mother has no birth record of her own: her item fails, journaled.
        assert st == 200 or sub == MOTHER, body
        EXCH.setdefault(sub, []).append(b64d(body["exchange"]))
    # A refused exchange of another consumer and subject.
    token = P.issue(FATHER, [ITEM], azp="school")
    st, body = P.exchange(FATHER, [ITEM], token, client="consumer-school")
    assert st == 403, body


def tearDownModule():
    if P is not None:
        P.close()


def get(path, client=AUDITOR):
    st, body = P.request("GET", path, client=client)
    return st, body


def query(**params):
    """Every record a records query answers, following the cursor."""
    out, after, pages = [], None, 0
    while True:
        q = "&".join("%s=%s" % kv for kv in params.items())
        if after is not None:
            q += "&after=%d" % after
        st, body = get("/v1/journal/records?" + q)
        assert st == 200, body
        out += body["records"]
        pages += 1
        if body["next"] is None:
            return out, pages
        after = body["next"]


def checkpoint():
    st, ck = get("/v1/journal/checkpoint")
    assert st == 200, ck
    return ck


class Journal(unittest.TestCase):

    def check_records(self, recs):
        """Each answered record is its leaf, decoded, at its seq."""
        seqs = [r["seq"] for r in recs]
        self.assertEqual(seqs, sorted(set(seqs)))
        for r in recs:
            leaf = b64d(r["leaf"])
            dec = msgpack.unpackb(leaf, raw=False)
            self.assertEqual(lbtest.canonical(dec), leaf)
            self.assertEqual(dec["seq"], r["seq"])
            self.assertEqual(dec["kind"], r["record"]["kind"])
        return [msgpack.unpackb(b64d(r["leaf"]), raw=False) for r in recs]

    def test_01_subject_filter_hashes_the_raw_id(self):
        recs = self.check_records(query(subject=NEWBORN)[0])
        # Item records name the subject; the exchange records cover several.
        items = [r for r in recs if r["kind"] == "item"]
        self.assertEqual(sorted(r["exch"] for r in items), sorted(EXCH[NEWBORN]))
        subj = {r["subject"] for r in recs}
        self.assertEqual(len(subj), 1, "one citizen, one pseudonym")
        self.assertNotIn(NEWBORN.encode(), b"".join(b64d(r["leaf"]) for r in
                                                    query(subject=NEWBORN)[0]))
        mother = self.check_records(query(subject=MOTHER)[0])
        self.assertTrue(mother)
        self.assertNotEqual({r["subject"] for r in mother if "subject" in r}, subj)
        self.assertEqual(query(subject="110105190001010000")[0], [])

    def test_02_consumer_dept_item_filters(self):
        for key, val in (("consumer", "newborn"), ("dept", "nhc"), ("item", ITEM),
                         ("consumer", "school")):
            recs = self.check_records(query(**{key: val})[0])
            self.assertTrue(recs, (key, val))
            self.assertTrue(all(r.get(key) == val for r in recs), (key, val))
        school = self.check_records(query(consumer="school")[0])
        self.assertTrue(all(r["decision"] == "deny" for r in school), school)
        both = self.check_records(query(consumer="newborn", dept="nhc", item=ITEM)[0])
        self.assertEqual(len([r for r in both if r["kind"] == "item"]), 4)
        self.assertEqual(query(dept="nosuchdept")[0], [])

    def test_03_time_filters(self):
        allrecs = self.check_records(query(consumer="newborn")[0])
        times = sorted(r["t_ms"] for r in allrecs)
        mid = times[len(times) // 2]
        early = self.check_records(query(consumer="newborn", until_ms=mid)[0])
        late = self.check_records(query(consumer="newborn", since_ms=mid)[0])
        self.assertTrue(all(r["t_ms"] < mid for r in early))
        self.assertTrue(all(r["t_ms"] >= mid for r in late))
        self.assertEqual(len(early) + len(late), len(allrecs))
        future = int(time.time() * 1000) + 3600 * 1000
        self.assertEqual(query(since_ms=future)[0], [])
        st, body = get("/v1/journal/records?since_ms=10&until_ms=5")
        self.assertEqual((st, body["error"]["code"]), (400, "bad_request"))

    def test_04_pagination(self):
        whole, pages = query(consumer="newborn")
        paged, npages = query(consumer="newborn", limit=2)
        self.assertEqual([r["seq"] for r in paged], [r["seq"] for r in whole])
        self.assertGreaterEqual(npages, len(whole) // 2)
        st, body = get("/v1/journal/records?limit=1")
        self.assertEqual(st, 200)
        self.assertEqual(len(body["records"]), 1)
        self.assertEqual(body["next"], body["records"][0]["seq"])
        for bad in ("limit=0", "limit=1001", "after=x", "subject=", "consumer=" + "c" * 80):
            st, body = get("/v1/journal/records?" + bad)
            self.assertEqual((st, body["error"]["code"]), (400, "bad_request"), bad)

    def test_05_msgpack_answer(self):
        st, body = P.request("GET", "/v1/journal/records?limit=3", client=AUDITOR,
                             accept="application/msgpack")
        self.assertEqual(st, 200)
        for r in body["records"]:
            self.assertIsInstance(r["leaf"], bytes)
            self.assertEqual(msgpack.unpackb(r["leaf"], raw=False), r["record"])

    def test_06_inclusion_proofs_verify_independently(self):
        ck = checkpoint()
        size, root = ck["size"], b64d(ck["root"])
        _, leaves = P.journal()
        for seq in sorted({0, 1, size // 2, size - 2, size - 1}):
            st, pr = get("/v1/journal/proof/inclusion?seq=%d&size=%d" % (seq, size))
            self.assertEqual(st, 200, pr)
            self.assertEqual((pr["seq"], pr["size"]), (seq, size))
            path = [b64d(p) for p in pr["path"]]
            got = lbtest.root_from_inclusion(lbtest.leaf_hash(leaves[seq]), seq, size, path)
            self.assertEqual(got, root, seq)
            # A changed record does not reach the signed root.
            bad = bytearray(leaves[seq])
            bad[-1] ^= 1
            self.assertNotEqual(lbtest.root_from_inclusion(lbtest.leaf_hash(bytes(bad)), seq,
                                                           size, path), root)
        for bad in ("seq=%d&size=%d" % (size, size), "seq=0&size=%d" % (size + 10**6),
                    "seq=0", "size=3"):
            st, body = get("/v1/journal/proof/inclusion?" + bad)
            self.assertEqual((st, body["error"]["code"]), (400, "bad_request"), bad)

    def test_07_consistency_proofs_verify_independently(self):
        ck1 = checkpoint()
        token = P.issue(NEWBORN, [ITEM])
        st, body = P.exchange(NEWBORN, [ITEM], token)
        self.assertEqual(st, 200, body)
        ck2 = checkpoint()
        _, leaves = P.journal()
        hashes = [lbtest.leaf_hash(x) for x in leaves]
        self.assertGreater(ck2["size"], ck1["size"])
        pairs = [(ck1["size"], ck2["size"]), (1, ck2["size"]), (ck2["size"], ck2["size"])]
        pairs += [(m, ck2["size"]) for m in range(2, ck2["size"], 3)]
        for first, second in pairs:
            st, pr = get("/v1/journal/proof/consistency?first=%d&second=%d" % (first, second))
            self.assertEqual(st, 200, pr)
            self.assertEqual((pr["first"], pr["second"]), (first, second))
            path = [b64d(p) for p in pr["path"]]
            r1, r2 = lbtest.merkle_root(hashes[:first]), lbtest.merkle_root(hashes[:second])
            lbtest.verify_consistency(first, second, r1, r2, path)
            if first < second:
                with self.assertRaises(ValueError):
                    lbtest.verify_consistency(first, second, lbtest.leaf_hash(b"x"), r2, path)
        self.assertEqual(lbtest.merkle_root(hashes[:ck1["size"]]), b64d(ck1["root"]))
        for bad in ("first=0&second=1", "first=3&second=2", "first=1",
                    "first=1&second=%d" % (ck2["size"] + 10**6)):
            st, body = get("/v1/journal/proof/consistency?" + bad)
            self.assertEqual((st, body["error"]["code"]), (400, "bad_request"), bad)

    def test_08_auditor_reads_are_journaled(self):
        size = P.request("GET", "/v1/health", client=None)[1]["journal_size"]
        for path, name in (("/v1/journal/checkpoint", "checkpoint"),
                           ("/v1/journal/leaves?start=0&end=1", "leaves"),
                           ("/v1/journal/records?subject=" + MOTHER, "records"),
                           ("/v1/journal/proof/inclusion?seq=0&size=1", "inclusion"),
                           ("/v1/journal/proof/consistency?first=1&second=1", "consistency")):
            st, body = get(path)
            self.assertEqual(st, 200, body)
            # The read's record committed before the answer was sent.
            after = P.request("GET", "/v1/health", client=None)[1]["journal_size"]
            self.assertEqual(after, size + 1, path)
            st, r = get("/v1/journal/leaves?start=%d&end=%d" % (size, size + 1))
            rec = msgpack.unpackb(b64d(r["leaves"][0]), raw=False)
            self.assertEqual(rec["kind"], "audit-read")
            self.assertEqual(rec["item"], name)
            self.assertEqual((rec["decision"], rec["code"]), ("allow", "ok"))
            self.assertEqual(len(rec["actor"]), 32)
            self.assertNotIn("consumer", rec)
            size = after + 1    # the leaves read above
        # The citizen whose records were read is named (by pseudonym) in the read.
        mother = self.check_records(query(subject=MOTHER)[0])
        self.assertTrue(any(r["kind"] == "audit-read" for r in mother))
        # Only auditors read the journal, and refusals add nothing.
        size = P.request("GET", "/v1/health", client=None)[1]["journal_size"]
        for path in ("/v1/journal/records", "/v1/journal/proof/inclusion?seq=0&size=1"):
            st, body = get(path, client="consumer-newborn")
            self.assertEqual((st, body["error"]["code"]), (403, "forbidden_role"))
        st, body = get("/v1/journal/nothing")
        self.assertEqual((st, body["error"]["code"]), (404, "not_found"))
        self.assertEqual(P.request("GET", "/v1/health", client=None)[1]["journal_size"], size)

    def test_09_audit_guide_commands(self):
        """Runs every "$audit ..." command of docs/audit.md, in order, against
        this platform instead of the demo's 127.0.0.1:8443."""
        with open(os.path.join(lbtest.SRCDIR, "docs", "audit.md")) as f:
            doc = f.read()
        cmds = [line.strip() for block in re.findall(r"```sh\n(.*?)```", doc, re.S)
                for line in block.splitlines() if line.strip().startswith("$audit ")]
        self.assertGreaterEqual(len(cmds), 8, cmds)
        cert, key = P.client_files(AUDITOR)
        audit = [lbtest.LIANCTL, "--gateway", "127.0.0.1:%d" % P.port, "--cert", cert,
                 "--key", key, "--certs", P.pki]
        work = tempfile.mkdtemp(prefix="lianban-audit-", dir=P.tmp)
        outs = {}
        for cmd in cmds:
            out = subprocess.run(audit + shlex.split(cmd)[1:], cwd=work, capture_output=True,
                                 text=True, timeout=60)
            self.assertEqual(out.returncode, 0, "%s\n%s%s" % (cmd, out.stdout, out.stderr))
            outs[cmd] = out.stdout

        def path(name):
            return os.path.join(work, name)
        # The saved checkpoint verifies independently against the first records.
        with open(path("ckpt-1.json")) as f:
            saved = json.load(f)
        _, leaves = P.journal()
        lbtest.verify_checkpoint(saved, leaves[:saved["size"]],
                                 os.path.join(P.pki, "journal", "checkpoint.pem"))
        # The pulls hold what their filters asked for, each record its leaf.
        with open(path("newborn.jsonl")) as f:
            lines = [json.loads(x) for x in f if x.strip()]
        self.assertEqual(len({r["record"]["subject"] for r in lines}), 1, "one citizen")
        exch = {b64d(r["record"]["exch"]) for r in lines if r["record"]["kind"] == "item"}
        self.assertTrue(set(EXCH[NEWBORN]) <= exch)
        for r in lines:
            self.assertEqual(b64d(r["leaf"]), leaves[r["seq"]])
        with open(path("nhc.msgpack"), "rb") as f:
            pulled = list(msgpack.Unpacker(f, raw=False))
        self.assertTrue(pulled)
        for r in pulled:
            self.assertEqual((r["record"]["consumer"], r["record"]["dept"], r["record"]["item"]),
                             ("newborn", "nhc", ITEM))
            self.assertEqual(r["leaf"], leaves[r["seq"]])
        said = "".join(outs.values())
        self.assertIn("consistency proof verifies", said)
        self.assertIn("records verified: all %d records of newborn.jsonl" % len(lines), said)
        self.assertIn("records verified: all %d records of nhc.msgpack" % len(pulled), said)

        # A pulled record that was changed is refused, naming it.
        bad = dict(lines[-1])
        leaf = bytearray(b64d(bad["leaf"]))
        leaf[leaf.index(b"newborn") + 1] ^= 1
        bad["leaf"] = lbtest.b64e(bytes(leaf))
        bad.pop("record")
        with open(path("bad.jsonl"), "w") as f:
            f.write(json.dumps(bad) + "\n")
        out = subprocess.run(audit + ["journal", "verify", "--records", "bad.jsonl"], cwd=work,
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("record %d is not in the journal" % bad["seq"], out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
