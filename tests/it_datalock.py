"""Integration: one daemon per data directory (docs/operations.md).

A second lianband started on the data directory of a running one must
refuse to start, at once and with a message that names the directory and
the pid of the daemon holding it, instead of opening the same LMDB
environments and wedging the first one (its appends would collide with
the second's: MDB_KEYEXIST).  The first one keeps serving exchanges and
its journal verifies; once it has stopped, the directory is free again."""

import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
P = None


def setUpModule():
    global P
    P = lbtest.Platform()


def tearDownModule():
    if P is not None:
        P.close()


def second_daemon():
    """A second lianband on P's data directory; its exit status and output.
    When it does not exit by itself it is stopped, and the test fails."""
    p = subprocess.Popen(lbtest.WRAP + [
        lbtest.LIANBAND, "--listen", "127.0.0.1:0", "--data", P.data, "--certs", P.pki,
        "--policies", os.path.join(lbtest.SRCDIR, "policies"), "--adapters", P.specs,
        "--endpoints", P.endpoints], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    try:
        out, _ = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.terminate()
        out, _ = p.communicate(timeout=30)
        raise AssertionError("a second lianband on the same data directory kept running:\n"
                             + out)
    return p.returncode, out


class DataLock(unittest.TestCase):

    def exchange_ok(self):
        st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
        self.assertEqual(st, 200, body)
        (r,) = body["results"]
        self.assertEqual(r["status"], "ok", r)

    def test_second_daemon_refused(self):
        self.exchange_ok()
        rc, out = second_daemon()
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("listening on", out)
        self.assertIn(P.data, out)
        self.assertIn("in use by another lianband (pid %d" % P.gw.pid, out)
        # The first one was not disturbed: it serves, and its journal is whole.
        self.exchange_ok()
        v = P.ctl("journal", "verify", client="auditor-audit1")
        self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
        self.assertIsNone(P.gw.poll())
        # The lock lives as long as the daemon: a restart finds it free.
        self.assertEqual(P.stop_gateway(), 0)
        P.port = P.start_gateway()
        self.exchange_ok()
        rc, out = second_daemon()
        self.assertNotEqual(rc, 0, out)
        self.assertIn("pid %d" % P.gw.pid, out)


if __name__ == "__main__":
    unittest.main()
