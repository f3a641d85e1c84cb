"""Integration: the journal survives kill -9 and shows tampering (docs/contract.md §7).

A stream of exchanges runs from several client threads while lianband is
killed with SIGKILL; after a restart on the same data directory every exchange
a client saw acknowledged is in the journal with its record, the whole tree
verifies (lianctl and an independent Python check), new appends extend the
same tree, and consistency proofs from checkpoints saved before the crash
verify.  Then one byte of one stored record is changed offline, and both
verifiers refuse the journal, lianctl naming the record."""

import glob
import hashlib
import http.client
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d  # noqa: E402

ITEM = "birth_medical_certificate"
AUDITOR = "auditor-audit1"
THREADS = 4
P = None
SAVED = []      # checkpoint files saved before a crash
POLICIES = None


def setUpModule():
    """The demo policies, with a rate limit the stream stays under."""
    global P, POLICIES
    POLICIES = tempfile.mkdtemp(prefix="lianban-crash-policies-")
    for f in glob.glob(os.path.join(lbtest.SRCDIR, "policies", "*.json")):
        with open(f) as src:
            pol = json.load(src)
        if pol.get("bundle") == "newborn":
            pol["rate_limit"] = {"per_second": 10000, "burst": 10000}
        with open(os.path.join(POLICIES, os.path.basename(f)), "w") as dst:
            json.dump(pol, dst, ensure_ascii=False)
    P = lbtest.Platform(gw_args=["--policies", POLICIES])


def tearDownModule():
    if POLICIES is not None:
        shutil.rmtree(POLICIES, ignore_errors=True)
    if P is not None:
        P.close()


def checkpoint_pem():
    return os.path.join(P.pki, "journal", "checkpoint.pem")


def save_checkpoint(name):
    path = os.path.join(P.tmp, name)
    out = P.ctl("journal", "checkpoint", "--save", path, client=AUDITOR)
    assert out.returncode == 0, out.stdout + out.stderr
    SAVED.append(path)
    return path


def pump_audit_reads(n):
    """n auditor reads (each one journaled record) over keep-alive connections."""
    def run(count):
        ctx = ssl.create_default_context(cafile=os.path.join(P.pki, "client-ca.pem"))
        ctx.load_cert_chain(*P.client_files(AUDITOR))
        conn = http.client.HTTPSConnection("127.0.0.1", P.port, context=ctx, timeout=30)
        for _ in range(count):
            conn.request("GET", "/v1/journal/checkpoint")
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
        conn.close()
    threads = [threading.Thread(target=run, args=(max(n, 0) // THREADS + 1,))
               for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


class Stream:
    """Client threads that run exchanges until their tokens run out or the
    gateway goes away; acked holds what the gateway acknowledged."""

    def __init__(self, per_thread):
        self.tokens = [[P.issue(NEWBORN, [ITEM]) for _ in range(per_thread)]
                       for _ in range(THREADS)]
        self.acked = []         # (journal_seq, exchange id, document bytes, seal claim)
        self.errors = []
        self.lock = threading.Lock()
        self.gate = threading.Event()   # cleared: the clients pause between exchanges
        self.gate.set()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in self.tokens]

    def run(self, tokens):
        for token in tokens:
            self.gate.wait(60)
            try:
                st, body = P.exchange(NEWBORN, [ITEM], token)
            except (OSError, ValueError, http.client.HTTPException):
                return          # the gateway is gone: this answer never came
            if st != 200:
                with self.lock:
                    self.errors.append((st, body))
                return
            (r,) = body["results"]
            with self.lock:
                if r["status"] != "ok":
                    self.errors.append(r)
                    return
                self.acked.append((r["journal_seq"], b64d(body["exchange"]),
                                   b64d(r["document_bytes"]), b64d(r["seal"]["claim"])))

    def start(self):
        for t in self.threads:
            t.start()

    def wait_acked(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.acked) >= n or self.errors:
                    break
            time.sleep(0.01)
        with self.lock:
            assert not self.errors, self.errors
            assert len(self.acked) >= n, (len(self.acked), n)

    def join(self):
        for t in self.threads:
            t.join(60)
            assert not t.is_alive()


class Crash(unittest.TestCase):

    def check_after_restart(self, acked, before):
        """The journal after a restart holds every acknowledged exchange and
        the records committed before the crash, and it verifies."""
        ck, leaves = P.journal()
        self.assertEqual(leaves[:len(before)], before, "a committed record changed")
        for seq, exch, doc, claim in acked:
            self.assertLess(seq, len(leaves), "an acknowledged exchange was lost")
            rec = msgpack.unpackb(leaves[seq], raw=False)
            self.assertEqual((rec["seq"], rec["kind"], rec["decision"], rec["code"]),
                             (seq, "item", "allow", "ok"))
            self.assertEqual(rec["exch"], exch)
            self.assertEqual(rec["dept"], "nhc")
            self.assertEqual(rec["doc"], hashlib.sha256(doc).digest())
            self.assertEqual(rec["claim"], hashlib.sha256(claim).digest())
        lbtest.verify_checkpoint(ck, leaves, checkpoint_pem())
        for saved in SAVED:
            out = P.ctl("journal", "verify", "--checkpoint", saved, client=AUDITOR)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("consistency proof verifies", out.stdout)
        return ck, leaves

    def crash_round(self, per_thread, save_after, kill_after):
        st, _ = P.request("GET", "/v1/journal/checkpoint", client=AUDITOR)
        before = P.journal()[1] if st == 200 else []
        stream = Stream(per_thread)
        stream.start()
        stream.wait_acked(save_after)
        # lianctl saves a checkpoint while the clients pause, so that however
        # long it takes, the kill below still comes in the middle of the stream.
        stream.gate.clear()
        save_checkpoint("mid-%d.ckpt" % len(SAVED))
        stream.gate.set()
        stream.wait_acked(kill_after)
        # The newest checkpoint just before the crash, saved as --save does.
        st, ck = P.request("GET", "/v1/journal/checkpoint", client=AUDITOR)
        P.gw.send_signal(signal.SIGKILL)
        self.assertEqual(st, 200, ck)
        late = os.path.join(P.tmp, "late-%d.ckpt" % len(SAVED))
        with open(late, "w") as f:
            json.dump(ck, f)
        SAVED.append(late)
        P.gw.wait(30)
        stream.join()
        with stream.lock:
            acked = list(stream.acked)
        self.assertGreaterEqual(len(acked), kill_after)
        self.assertLess(len(acked), THREADS * per_thread, "the stream ended before the kill")
        self.assertEqual(len({a[0] for a in acked}), len(acked), "two answers, one seq")

        P.port = P.start_gateway()
        ck, leaves = self.check_after_restart(acked, before)

        # New appends extend the same tree.
        st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
        self.assertEqual(st, 200, body)
        seq = body["results"][0]["journal_seq"]
        self.assertGreaterEqual(seq, ck["size"])
        ck2, leaves2 = P.journal()
        self.assertEqual(leaves2[:len(leaves)], leaves)
        lbtest.verify_checkpoint(ck2, leaves2, checkpoint_pem())
        out = P.ctl("journal", "verify", client=AUDITOR)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return acked

    def test_01_kill_during_stream(self):
        acked = self.crash_round(per_thread=30, save_after=20, kill_after=60)
        self.assertGreaterEqual(len(acked), 60)

    def test_02_kill_early_in_a_second_stream(self):
        # A different moment: a few answers into the stream, right after a save.
        self.crash_round(per_thread=15, save_after=3, kill_after=4)

    def test_03_changed_byte_is_detected(self):
        st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
        self.assertEqual(st, 200, body)
        # Past one page of leaves (1000), so that lianctl narrows the search
        # down to a page and then to a record.
        pump_audit_reads(1200 - P.request("GET", "/v1/health", client=None)[1]["journal_size"])
        ck, leaves = P.journal()
        self.assertGreater(len(leaves), 1100)
        # An auditor's read of the second page; its "item" names what was read.
        seq = next(i for i in range(1050, len(leaves))
                   if msgpack.unpackb(leaves[i], raw=False)["item"] == "checkpoint")
        leaf = leaves[seq]
        saved = SAVED[-1] if SAVED else save_checkpoint("before-change.ckpt")
        self.assertEqual(P.stop_gateway(), 0)
        path = os.path.join(P.data, "data.mdb")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        # The record's bytes, with "checkpoint" changed to "checkpoins": still
        # a canonical record, so only the hashes can tell.
        pos = leaf.index(b"\xaacheckpoint") + 10
        bad = bytearray(leaf)
        bad[pos] ^= ord("t") ^ ord("s")
        found, at = 0, data.find(leaf)
        while at != -1:
            data[at:at + len(leaf)] = bad
            found += 1
            at = data.find(leaf, at + 1)
        self.assertGreater(found, 0, "record %d not found in data.mdb" % seq)
        with open(path, "r+b") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

        P.port = P.start_gateway()
        ck2, leaves2 = P.journal()
        self.assertEqual(leaves2[seq], bytes(bad))
        self.assertEqual(msgpack.unpackb(leaves2[seq], raw=False)["item"], "checkpoins")
        with self.assertRaises(AssertionError):
            lbtest.verify_checkpoint(ck2, leaves2, checkpoint_pem())
        # lianctl refuses the journal and names the changed record.
        out = P.ctl("journal", "verify", client=AUDITOR)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("record %d " % seq, out.stderr)
        self.assertIn("does not match", out.stderr)
        # A checkpoint saved before the change does not help a rewritten journal.
        out = P.ctl("journal", "verify", "--checkpoint", saved, client=AUDITOR)
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("record %d " % seq, out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
