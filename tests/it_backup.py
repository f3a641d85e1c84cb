"""Integration: hot backup and restore, following docs/operations.md.

Exchanges run from several client threads while `lianband --backup DEST`
copies the journal and the registry of the running daemon's data directory.
Then, as the restore procedure says: the daemon is stopped, the backup is
copied into a fresh data directory, the daemon starts on it, and
`lianctl journal verify --checkpoint SAVED` passes for a checkpoint saved
before the backup.  Every exchange acknowledged before the backup began is
in the restored journal, the registry's change is there too, and new
exchanges extend the same tree: the journal grows and the consistency proofs
from the checkpoints saved before the backup and after the restore verify."""

import http.client
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d  # noqa: E402

ITEM = "birth_medical_certificate"
AUDITOR = "auditor-audit1"
THREADS = 4
P = None
POLICIES = None


def setUpModule():
    """The newborn bundle alone, with a rate limit the load stays under."""
    global P, POLICIES
    POLICIES = tempfile.mkdtemp(prefix="lianban-backup-policies-")
    with open(os.path.join(lbtest.SRCDIR, "policies", "newborn.json")) as f:
        newborn = json.load(f)
    newborn["rate_limit"] = {"per_second": 10000, "burst": 10000}
    lbtest.write_json(POLICIES, "newborn.json", newborn)
    P = lbtest.Platform(gw_args=["--policies", POLICIES])


def tearDownModule():
    if POLICIES is not None:
        shutil.rmtree(POLICIES, ignore_errors=True)
    if P is not None:
        P.close()


def backup(dest, data=None):
    """lianband --backup DEST --data DATA, as the operator runs it."""
    return subprocess.run(lbtest.WRAP + [lbtest.LIANBAND, "--data", data or P.data,
                                         "--backup", dest],
                          capture_output=True, text=True, timeout=120)


def save_checkpoint(name):
    path = os.path.join(P.tmp, name)
    out = P.ctl("journal", "checkpoint", "--save", path, client=AUDITOR)
    assert out.returncode == 0, out.stdout + out.stderr
    with open(path) as f:
        return path, json.load(f)


def verify(*args):
    out = P.ctl("journal", "verify", *args, client=AUDITOR)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


class Load:
    """Client threads that run exchanges until told to stop; acked holds
    (journal seq, exchange id, whether the backup had begun when the
    answer came)."""

    def __init__(self):
        self.acked = []
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.backup_begun = False
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(THREADS)]

    def run(self):
        while not self.stop.is_set():
            token = P.issue(NEWBORN, [ITEM])
            try:
                st, body = P.exchange(NEWBORN, [ITEM], token)
            except (OSError, ValueError, http.client.HTTPException) as e:
                with self.lock:
                    self.errors.append(repr(e))
                return
            with self.lock:
                if st != 200 or body["results"][0]["status"] != "ok":
                    self.errors.append((st, body))
                    return
                self.acked.append((body["results"][0]["journal_seq"], b64d(body["exchange"]),
                                   self.backup_begun))

    def count(self):
        with self.lock:
            return len(self.acked)

    def wait_for(self, n):
        """Waits until n exchanges were acknowledged (or one failed)."""
        while True:
            with self.lock:
                if self.errors:
                    raise AssertionError(self.errors)
                if len(self.acked) >= n:
                    return
            self.stop.wait(0.02)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)
            assert not t.is_alive()
        assert not self.errors, self.errors


class Backup(unittest.TestCase):

    def test_backup_under_load_and_restore(self):
        # A registry change, which the backup must carry.
        with open(os.path.join(POLICIES, "newborn.json")) as f:
            policy = json.load(f)
        policy["purpose"] = policy.get("purpose", "") + " (backup test)"
        st, ans = P.request("PUT", "/v1/policies/newborn", policy, client="admin-ops")
        self.assertEqual((st, ans.get("version")), (200, 2), ans)
        saved_path, saved = save_checkpoint("before-backup.json")

        load = Load()
        for t in load.threads:
            t.start()
        load.wait_for(40)
        with load.lock:
            load.backup_begun = True
        dest = os.path.join(P.tmp, "backup-1")
        out = backup(dest)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        m = re.search(r"journal of (\d+) records", out.stdout)
        self.assertIsNotNone(m, out.stdout)
        copied = int(m.group(1))
        # Exchanges go on after the backup, and then the daemon is stopped.
        load.wait_for(load.count() + 10)
        load.finish()
        self.assertGreaterEqual(copied, saved["size"])

        # The backup has the layout of a data directory, private to its owner.
        self.assertEqual(sorted(os.listdir(dest)), ["data.mdb", "registry"])
        self.assertEqual(os.listdir(os.path.join(dest, "registry")), ["data.mdb"])
        for d in (dest, os.path.join(dest, "registry")):
            self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700, d)
        for f in ("data.mdb", "registry/data.mdb"):
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(dest, f)).st_mode), 0o600, f)
        # A backup never writes into a directory that holds something.
        again = backup(dest)
        self.assertNotEqual(again.returncode, 0)
        self.assertIn("not empty", again.stderr)
        self.assertEqual(sorted(os.listdir(dest)), ["data.mdb", "registry"])

        # Restore (docs/operations.md): stop, copy into a fresh directory, start.
        self.assertEqual(P.stop_gateway(), 0)
        restored = os.path.join(P.tmp, "restored")
        shutil.copytree(dest, restored)
        os.chmod(restored, 0o700)
        P.data = restored
        P.port = P.start_gateway()
        st, health = P.request("GET", "/v1/health", client=None)
        self.assertEqual((st, health["journal_size"]), (200, copied), health)
        text = verify("--checkpoint", saved_path)
        self.assertIn("saved checkpoint verified", text)

        # Every exchange acknowledged before the backup began is in the copy.
        ck, leaves = P.journal()
        self.assertGreaterEqual(len(leaves), copied)
        before = [(seq, exch) for seq, exch, begun in load.acked if not begun]
        self.assertGreaterEqual(len(before), 10)
        for seq, exch in before:
            self.assertLess(seq, copied)
            self.assertEqual(msgpack.unpackb(leaves[seq], raw=False)["exch"], exch)
        lbtest.verify_checkpoint(ck, leaves, os.path.join(P.pki, "journal", "checkpoint.pem"))
        # The registry's change came back with it.
        st, ans = P.request("GET", "/v1/policies/newborn", client="consumer-newborn")
        self.assertEqual((st, ans["version"]), (200, 2), ans)
        self.assertTrue(ans["spec"]["purpose"].endswith("(backup test)"), ans)

        # New exchanges extend the same tree.
        restored_path, restored_ck = save_checkpoint("after-restore.json")
        for _ in range(3):
            st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
            self.assertEqual(st, 200, body)
            self.assertEqual(body["results"][0]["status"], "ok", body)
            self.assertGreaterEqual(body["results"][0]["journal_seq"], restored_ck["size"])
        verify("--checkpoint", saved_path)
        verify("--checkpoint", restored_path)
        _, now = save_checkpoint("later.json")
        self.assertGreater(now["size"], restored_ck["size"])
        st, proof = P.request("GET", "/v1/journal/proof/consistency?first=%d&second=%d"
                              % (saved["size"], now["size"]), client=AUDITOR)
        self.assertEqual(st, 200, proof)
        lbtest.verify_consistency(saved["size"], now["size"], b64d(saved["root"]),
                                  b64d(now["root"]), [b64d(p) for p in proof["path"]])

    def test_refusals(self):
        # A directory that is no data directory: nothing is written.
        empty = tempfile.mkdtemp(prefix="lianban-backup-none-")
        try:
            dest = os.path.join(P.tmp, "backup-none")
            out = backup(dest, data=empty)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("no LMDB environment", out.stderr)
            out = backup(dest, data=os.path.join(empty, "missing"))
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("give --data the daemon's data directory", out.stderr)
            self.assertFalse(os.path.exists(dest))
        finally:
            shutil.rmtree(empty, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
