"""Integration: readiness (GET /v1/ready) follows the journal and the reloads.

/v1/health is liveness: 200 while the daemon runs, with the readiness state
in its body.  /v1/ready is 503 with a reason while the journal cannot commit,
while its map is near the limit journal-map-max lets it grow to, and while
the configuration of the last SIGHUP failed to load; 200 {"status":"ready"}
otherwise.  Both are answered without a client certificate.  The journal is
made to fail for real: its map may grow only a little beyond what a fresh
journal holds, and exchanges fill it; raising the limit by SIGHUP makes the
gateway ready again, without an exchange having to succeed first."""

import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402

ITEM = "birth_medical_certificate"
P = None
CONF_DIR = None


def write_conf(text):
    with open(os.path.join(CONF_DIR, "lianband.conf"), "w") as f:
        f.write("# written by it_ready.py\n" + text)


def setUpModule():
    global P, CONF_DIR
    CONF_DIR = tempfile.mkdtemp(prefix="lianband-ready-")
    write_conf("journal-map-max = 0\n")
    P = lbtest.Platform(gw_args=["--config", os.path.join(CONF_DIR, "lianband.conf")])


def tearDownModule():
    if P is not None:
        P.close()
    shutil.rmtree(CONF_DIR, ignore_errors=True)


def ready():
    return P.request("GET", "/v1/ready", client=None)


def health():
    st, body = P.request("GET", "/v1/health", client=None)
    assert st == 200, (st, body)
    return body


def one_exchange():
    tok = P.issue(lbtest.NEWBORN, [ITEM])
    return P.exchange(lbtest.NEWBORN, [ITEM], tok)


class Ready(unittest.TestCase):

    def test_01_ready_without_certificate(self):
        self.assertEqual(ready(), (200, {"status": "ready"}))
        h = health()
        self.assertEqual(h["status"], "ok")
        self.assertTrue(h["ready"])
        self.assertNotIn("reason", h)
        self.assertFalse(h["journal_failing"])
        self.assertIn("journal_size", h)

    def test_02_a_failed_reload_is_not_ready_until_a_good_one(self):
        write_conf("journal-map-max = lots\n")
        P.sighup("reload failed")
        st, body = ready()
        self.assertEqual(st, 503, body)
        self.assertEqual(body["status"], "not_ready")
        self.assertIn("configuration", body["reason"])
        h = health()
        self.assertEqual(h["status"], "ok")
        self.assertFalse(h["ready"])
        self.assertEqual(h["reason"], body["reason"])
        write_conf("journal-map-max = 0\n")
        P.sighup("reloaded")
        self.assertEqual(ready(), (200, {"status": "ready"}))

    def test_03_a_full_journal_is_not_ready_and_recovers(self):
        # A limit a little above what the journal holds now, on a restart
        # (a running map never shrinks, so a lower limit needs one), with room
        # enough that the near-full band (the last 10%) is wider than what one
        # exchange's commit adds, so that the journal is seen near full first.
        used = health()["journal_map_used"]
        limit_kib = used // 1024 + 200
        P.stop_gateway()
        write_conf("journal-map-max = %d\n" % limit_kib)
        P.port = P.start_gateway()
        h = health()
        self.assertEqual(h["journal_map_limit"], limit_kib * 1024)
        self.assertEqual(ready(), (200, {"status": "ready"}))
        reasons = []
        for _ in range(200):
            st, ans = one_exchange()
            rst, rbody = ready()
            if rst != 200:
                reasons.append(rbody["reason"])
            if st != 200:
                break
        else:
            self.fail("the journal never filled: %r" % health())
        self.assertEqual(st, 503, ans)
        self.assertEqual(ans["error"]["code"], "journal_unavailable", ans)
        self.assertIn("the journal's map is near full", reasons)
        st, body = ready()
        self.assertEqual(st, 503, body)
        self.assertEqual(body, {"status": "not_ready", "reason": "the journal cannot commit"})
        h = health()
        self.assertEqual(h["status"], "ok")
        self.assertTrue(h["journal_failing"])
        self.assertFalse(h["ready"])
        # Room again: ready at once, and exchanges commit.
        write_conf("journal-map-max = 0\n")
        P.sighup("reloaded")
        self.assertEqual(ready(), (200, {"status": "ready"}))
        st, ans = one_exchange()
        self.assertEqual(st, 200, ans)
        self.assertFalse(health()["journal_failing"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
