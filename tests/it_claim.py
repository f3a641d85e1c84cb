"""Integration: a consent token's jti is reserved in memory and written to the
journal by the commit that holds the exchange's records (docs/consent.md,
"One use per token").

The department cdc is held back by the simulator (--delay) and its adapter
waits for it, so an exchange that asks for a vaccination record stays
between its reservation and its commit for as long as the test needs: a
second request with the same token meanwhile is refused consent_replayed and
journaled; a kill -9 in that state loses the reservation with the unanswered
exchange, and after the restart the token serves one exchange (nothing had
been released), then never again, across another restart.  A token whose
request was refused after its reservation (a department down, a guardian
not proven) and an access report's token are used up just the same."""

import json
import os
import signal
import sys
import threading
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

STALLED = "vaccination_record"          # cdc: held back by the simulator
ITEM = "birth_medical_certificate"      # nhc: answers at once
DOWN = "medical_insurance"              # nhsa: answers 503
STRANGER = "110105198807070011"
P = None


class StallPlatform(lbtest.Platform):
    """The simulator holds cdc's answers a minute, and cdc's adapter waits that
    long: the stalled exchange ends when the test ends it, a minute being far
    more than the few requests made meanwhile need."""

    def write_specs(self):
        super().write_specs()
        path = os.path.join(self.specs, "cdc-vaccination.json")
        with open(path) as f:
            spec = json.load(f)
        spec["timeout_ms"] = 60000
        with open(path, "w") as f:
            json.dump(spec, f, ensure_ascii=False)


def setUpModule():
    global P
    P = StallPlatform(sim_args=["--delay", "cdc=60000", "--down", "nhsa"])


def tearDownModule():
    if P is not None:
        P.close()


def records():
    ck, leaves = P.journal()
    return [msgpack.unpackb(x, raw=False) for x in leaves]


def wait_for(cond, what, timeout=60):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


class Claim(unittest.TestCase):

    def assert_replayed(self, st, body):
        self.assertEqual(st, 409, body)
        self.assertEqual(body["error"]["code"], "consent_replayed", body)

    def test_10_stalled_reservation_crash_and_reuse(self):
        tok = P.issue(NEWBORN, [STALLED, ITEM])
        size = P.journal()[0]["size"]
        cdc = P.sim_stats()["by_dept"]["cdc"]
        answer = []

        def stalled():
            try:
                answer.append(P.exchange(NEWBORN, [STALLED], tok))
            except Exception as e:          # the gateway is killed under it
                answer.append(e)
        t = threading.Thread(target=stalled, daemon=True)
        t.start()
        # The department was asked: the jti is reserved, nothing is committed.
        wait_for(lambda: P.sim_stats()["by_dept"]["cdc"] > cdc, "the stalled fetch")

        # Same token meanwhile: the reservation in memory refuses it, journaled.
        st, body = P.exchange(NEWBORN, [ITEM], tok)
        self.assert_replayed(st, body)
        new = records()[size:]
        self.assertTrue(any(r["kind"] == "deny" and r["code"] == "consent_replayed"
                            for r in new), new)
        self.assertFalse(any(r.get("item") == STALLED for r in new), new)

        # kill -9 between the reservation and the commit.
        P.gw.send_signal(signal.SIGKILL)
        P.gw.wait(30)
        t.join(60)
        self.assertTrue(answer and isinstance(answer[0], Exception), answer)
        P.port = P.start_gateway()
        self.assertFalse(any(r.get("item") == STALLED for r in records()),
                         "the stalled exchange left a record")

        # Nothing was answered or released: the token serves one exchange now ...
        st, body = P.exchange(NEWBORN, [ITEM], tok)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["results"][0]["status"], "ok", body)
        # ... and none after it, also across a restart.
        self.assert_replayed(*P.exchange(NEWBORN, [ITEM], tok))
        self.assertEqual(P.stop_gateway(), 0)
        P.port = P.start_gateway()
        self.assert_replayed(*P.exchange(NEWBORN, [ITEM], tok))

    def test_20_refused_after_reservation_uses_the_token(self):
        tok = P.issue(NEWBORN, [DOWN])
        st, body = P.exchange(NEWBORN, [DOWN], tok)
        self.assertEqual(st, 502, body)
        self.assertEqual(body["error"]["code"], "department_unavailable", body)
        self.assert_replayed(*P.exchange(NEWBORN, [DOWN], tok))

    def test_30_unproven_guardian_uses_the_token(self):
        tok = P.issue(NEWBORN, [ITEM], act=STRANGER, rel="guardian")
        st, body = P.exchange(NEWBORN, [ITEM], tok)
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "guardian_unverified", body)
        self.assert_replayed(*P.exchange(NEWBORN, [ITEM], tok))

    def test_40_access_report_token_once(self):
        tok = P.issue(NEWBORN, ["access_report"], azp="citizen", bundle="access_report")
        path = "/v1/subjects/me/accesses"
        hdr = {"Lianban-Consent": tok}
        st, body = P.request("GET", path, client="consumer-citizen", headers=hdr)
        self.assertEqual(st, 200, body)
        st, body = P.request("GET", path, client="consumer-citizen", headers=hdr)
        self.assertEqual(st, 409, body)
        self.assertEqual(body["error"]["code"], "consent_replayed", body)


if __name__ == "__main__":
    unittest.main(verbosity=2)
