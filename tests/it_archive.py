"""Integration: journal archives (docs/audit.md, "Archives and retention").

`lianctl journal archive` writes records with the signed checkpoint that
covers them (and, for a later segment, the checkpoint and compact range it
starts from); `lianctl journal verify --archive` checks the file offline,
with no gateway and no client identity, and an independent Python check
agrees.  Two segments chain: the second starts with the checkpoint the first
ends with.  The live journal proves it went on from an archive (`journal
verify --checkpoint ARCHIVE`).  Changing any one byte of an archive, cutting
it short or adding to it makes the offline check fail with a reason."""

import hashlib
import os
import stat
import subprocess
import sys
import unittest

import msgpack
from cryptography import x509

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEMS = ["birth_medical_certificate", "vaccination_record"]
AUDITOR = "auditor-audit1"
FORMAT = "lianban-journal-archive/1"
P = None


def setUpModule():
    global P
    P = lbtest.Platform()


def tearDownModule():
    if P is not None:
        P.close()


def exchanges(n):
    """n exchanges of two items each; the journal_seq of the last one's first item."""
    seq = None
    for _ in range(n):
        st, body = P.exchange(NEWBORN, ITEMS, P.issue(NEWBORN, ITEMS))
        assert st == 200, body
        assert all(r["status"] == "ok" for r in body["results"]), body
        seq = min(r["journal_seq"] for r in body["results"])
    return seq


def archive(*args):
    return P.ctl("journal", "archive", *args, client=AUDITOR)


def verify_offline(path):
    """journal verify --archive with no gateway and no client identity."""
    return subprocess.run([lbtest.LIANCTL, "--certs", P.pki, "journal", "verify", "--archive",
                           path], capture_output=True, text=True, timeout=60)


def bins(data):
    """The archive as its stream of msgpack bin objects."""
    out, off = [], 0
    while off < len(data):
        c = data[off]
        n = {0xc4: 1, 0xc5: 2, 0xc6: 4}[c]
        size = int.from_bytes(data[off + 1:off + 1 + n], "big")
        off += 1 + n
        out.append(data[off:off + size])
        off += size
        assert off <= len(data), "truncated"
    return out


def independent_check(path, from_size):
    """Checks an archive with python3-msgpack and python3-cryptography only."""
    with open(path, "rb") as f:
        data = f.read()
    parts = bins(data)
    head_b, records = parts[0], parts[1:]
    head = msgpack.unpackb(head_b, raw=False)
    assert lbtest.canonical(head) == head_b, "header is not canonical"
    assert head["format"] == FORMAT and head["from"] == from_size, head
    assert len(records) == head["size"] - head["from"], (len(records), head["size"])
    for i, rec in enumerate(records):
        r = msgpack.unpackb(rec, raw=False)
        assert lbtest.canonical(r) == rec and r["seq"] == from_size + i
    # The compact range of "from" records, then the records, give the root.
    sizes = [1 << b for b in range(63, -1, -1) if from_size >> b & 1]
    assert len(sizes) == len(head["peaks"]), head
    stack = list(zip(sizes, head["peaks"]))
    for rec in records:
        stack.append((1, lbtest.leaf_hash(rec)))
        while len(stack) > 1 and stack[-1][0] == stack[-2][0]:
            (s, right), (_, left) = stack.pop(), stack.pop()
            stack.append((2 * s, lbtest.node_hash(left, right)))
    root = stack[-1][1]
    for _, h in reversed(stack[:-1]):
        root = lbtest.node_hash(h, root)
    assert root == head["root"], "root mismatch"
    pem = os.path.join(P.pki, "journal", "checkpoint.pem")
    for ck in [head] + ([head["start"]] if from_size else []):
        prot, payload, tbs, sig = lbtest.open_envelope(ck["envelope"], "checkpoint")
        assert (payload["size"], payload["root"], payload["t_ms"]) == \
            (ck["size"], ck["root"], ck["t_ms"])
        with open(pem, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        assert prot["kid"] == lbtest.kid_of(cert)
        lbtest.verify_sig(cert.public_key(), prot["alg"], tbs, sig)
    if from_size:
        start = head["start"]
        sroot = head["peaks"][-1]
        for h in reversed(head["peaks"][:-1]):
            sroot = lbtest.node_hash(h, sroot)
        assert start["size"] == from_size and start["root"] == sroot
    return head, records


class Archive(unittest.TestCase):

    def test_01_archive_and_chain(self):
        exchanges(5)
        size = P.request("GET", "/v1/health", client=None)[1]["journal_size"]
        first = os.path.join(P.tmp, "seg-1.lja")
        out = archive("--until", str(size), "--out", first)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("records 0 to", out.stdout)
        self.assertEqual(stat.S_IMODE(os.stat(first).st_mode), 0o600)
        self.assertEqual([f for f in os.listdir(P.tmp) if ".tmp." in f], [])
        v = verify_offline(first)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("archive verified: records 0 to", v.stdout)
        head1, recs1 = independent_check(first, 0)
        self.assertLessEqual(head1["size"], size)
        self.assertGreater(head1["size"], 0)

        # The next segment starts where the first ends.
        exchanges(3)
        size2 = P.request("GET", "/v1/health", client=None)[1]["journal_size"]
        second = os.path.join(P.tmp, "seg-2.lja")
        out = archive("--from", str(head1["size"]), "--until", str(size2), "--out", second)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        v = verify_offline(second)
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIn("it starts at the checkpoint of %d records" % head1["size"], v.stdout)
        head2, recs2 = independent_check(second, head1["size"])
        self.assertEqual(head2["start"]["envelope"], head1["envelope"])
        # Together they are the journal, record for record.
        _, leaves = P.journal()
        self.assertEqual(recs1 + recs2, leaves[:head2["size"]])

        # The live journal went on from both archives.
        for seg in (first, second):
            out = P.ctl("journal", "verify", "--checkpoint", seg, client=AUDITOR)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("saved checkpoint verified", out.stdout)

    def test_02_boundaries(self):
        # An archive ends at a signed checkpoint: inside one exchange's
        # records there is none, so --until there ends before the exchange.
        k = exchanges(1)
        path = os.path.join(P.tmp, "upto.lja")
        out = archive("--until", str(k + 1), "--out", path)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        head, _ = independent_check(path, 0)
        self.assertLessEqual(head["size"], k)
        # And it starts only where a signed checkpoint ends.
        out = archive("--from", str(k + 1), "--until", str(k + 100), "--out",
                      os.path.join(P.tmp, "bad.lja"))
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("signed no checkpoint of exactly %d records" % (k + 1), out.stderr)
        self.assertFalse(os.path.exists(os.path.join(P.tmp, "bad.lja")))
        out = archive("--from", "5", "--until", "5", "--out", path)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("--from must be below --until", out.stderr)
        # --archive is offline only.
        out = P.ctl("journal", "verify", "--archive", path, "--records", path, client=AUDITOR)
        self.assertEqual(out.returncode, 2, out.stderr)

    def test_03_tampering(self):
        exchanges(2)
        size = P.request("GET", "/v1/health", client=None)[1]["journal_size"]
        path = os.path.join(P.tmp, "whole.lja")
        out = archive("--until", str(size), "--out", path)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        with open(path, "rb") as f:
            good = f.read()
        bad = os.path.join(P.tmp, "tampered.lja")
        reasons = ("does not verify", "recompute to root", "not a canonical msgpack map",
                   "carries another seq", "not a journal archive", "ends before record",
                   "more after record", "differ from what the signed envelope says",
                   "do not fit together", "the header must hold", "signed by another key",
                   "envelope is malformed", "lacks size", "where a msgpack bin begins",
                   "longer header", "the file ends inside", "the peaks of the first",
                   "starts at", "more than the", "not a journal record")

        def refused(data, what):
            with open(bad, "wb") as f:
                f.write(data)
            v = verify_offline(bad)
            self.assertEqual(v.returncode, 1, "%s: accepted\n%s" % (what, v.stdout))
            self.assertIn("lianctl: " + bad + ": ", v.stderr, what)
            self.assertTrue(any(r in v.stderr for r in reasons), (what, v.stderr))
            return v.stderr

        # One byte changed anywhere: in the header and throughout the records.
        step = max(1, len(good) // 300)
        positions = sorted(set(list(range(0, len(good), step)) + [len(good) - 1]))
        for i in positions:
            refused(good[:i] + bytes([good[i] ^ 0x01]) + good[i + 1:], "byte %d" % i)
        # A record's content changed but still a canonical record of its seq:
        # only the signed root catches it.
        parts = bins(good)
        rec = msgpack.unpackb(parts[3], raw=False)
        rec["t_ms"] += 1
        forged = lbtest.canonical(rec)
        self.assertEqual(len(forged), len(parts[3]))
        err = refused(good.replace(parts[3], forged), "record 2 rewritten")
        self.assertIn("recompute to root", err)
        self.assertIn("the archive was altered", err)
        # Cut short, or with more after the last record.
        cut = good[:len(good) - len(parts[-1]) - 2]
        self.assertIn("ends before record", refused(cut, "cut"))
        self.assertIn("more after record", refused(good + b"\xc4\x00", "appended"))
        # The root in the header alone changed: the signature says otherwise.
        head = msgpack.unpackb(parts[0], raw=False)
        head["root"] = bytes(32)
        hb = lbtest.canonical(head)
        self.assertEqual(len(hb), len(parts[0]))
        err = refused(good.replace(parts[0], hb, 1), "root")
        self.assertIn("differ from what the signed envelope says", err)
        self.assertEqual(verify_offline(path).returncode, 0)

    def test_04_api(self):
        """GET /v1/journal/checkpoint?max_size=N: the newest checkpoint of at most N
        records and its compact range."""
        st, latest = P.request("GET", "/v1/journal/checkpoint", client=AUDITOR)
        self.assertEqual(st, 200, latest)
        self.assertNotIn("peaks", latest)
        st, ck = P.request("GET", "/v1/journal/checkpoint?max_size=%d" % latest["size"],
                           client=AUDITOR)
        self.assertEqual(st, 200, ck)
        self.assertEqual((ck["size"], ck["root"]), (latest["size"], latest["root"]))
        self.assertEqual(len(ck["peaks"]), bin(ck["size"]).count("1"))
        # The empty tree: a new journal signs it before its first record.
        st, ck = P.request("GET", "/v1/journal/checkpoint?max_size=0", client=AUDITOR)
        self.assertEqual(st, 200, ck)
        self.assertEqual((ck["size"], ck["root"], ck["peaks"]),
                         (0, lbtest.b64e(hashlib.sha256(b"").digest()), []), ck)
        st, ck = P.request("GET", "/v1/journal/checkpoint?max_size=x", client=AUDITOR)
        self.assertEqual((st, ck["error"]["code"]), (400, "bad_request"), ck)
        st, ck = P.request("GET", "/v1/journal/checkpoint?max_size=1", client="consumer-newborn")
        self.assertEqual(st, 403, ck)


if __name__ == "__main__":
    unittest.main()
