"""Integration: the empty journal has a signed checkpoint (issue 10, item 8).

A new journal signs the RFC 6962 empty tree (size 0, root SHA-256 of the
empty string) when it is created, so an auditor's first GET
/v1/journal/checkpoint on a fresh gateway answers 200 with an envelope that
verifies independently, and lianctl journal checkpoint and journal verify work
before any exchange was made (each of them then journals its own read)."""

import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import b64d  # noqa: E402

AUDITOR = "auditor-audit1"
EMPTY_ROOT = hashlib.sha256(b"").digest()


class EmptyJournal(unittest.TestCase):
    """Each test starts its own gateway on a new data directory."""

    def setUp(self):
        self.p = lbtest.Platform()

    def tearDown(self):
        self.p.close()

    def test_first_checkpoint_is_the_signed_empty_tree(self):
        st, ck = self.p.request("GET", "/v1/journal/checkpoint", client=AUDITOR)
        self.assertEqual(st, 200, ck)
        self.assertEqual(ck["size"], 0)
        self.assertEqual(b64d(ck["root"]), EMPTY_ROOT)
        payload = lbtest.verify_checkpoint(
            ck, [], os.path.join(self.p.pki, "journal", "checkpoint.pem"))
        self.assertEqual(payload["root"], EMPTY_ROOT)
        # The read was journaled; the next checkpoint covers it and extends
        # the empty tree.
        ck2, leaves = self.p.journal()
        self.assertGreaterEqual(ck2["size"], 1)
        lbtest.verify_checkpoint(ck2, leaves,
                                 os.path.join(self.p.pki, "journal", "checkpoint.pem"))

    def test_lianctl_on_a_fresh_gateway(self):
        out = self.p.ctl("journal", "checkpoint", client=AUDITOR)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("signature: ok", out.stdout)
        out = self.p.ctl("journal", "verify", client=AUDITOR)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("journal verified", out.stdout)

    def test_lianctl_verify_first(self):
        # journal verify as the very first request of the gateway.
        out = self.p.ctl("journal", "verify", client=AUDITOR)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("journal verified", out.stdout)

    def test_restart_keeps_one_empty_checkpoint(self):
        # A restart before any record must neither fail nor re-sign into a
        # different tree: the empty root is the same.
        self.assertEqual(self.p.stop_gateway(), 0)
        self.p.port = self.p.start_gateway()
        st, ck = self.p.request("GET", "/v1/journal/checkpoint", client=AUDITOR)
        self.assertEqual((st, ck["size"], b64d(ck["root"])), (200, 0, EMPTY_ROOT))


if __name__ == "__main__":
    unittest.main()
