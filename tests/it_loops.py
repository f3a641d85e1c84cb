"""Integration: several event loops serve the API (--loops 3).  Keep-alive
connections spread over the loops and are all served, as the per-loop
metrics show; a SIGHUP reload reaches the connections of every loop; a
consent token sent on many connections at once serves exactly one exchange;
SIGTERM lets the exchanges in flight on every loop finish."""

import http.client
import json
import os
import re
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
LOOPS = 3
CONNS = 24
P = None
POLICIES = None


def setUpModule():
    global P, POLICIES
    POLICIES = tempfile.mkdtemp(prefix="lianban-loops-pol-")
    for f in os.listdir(os.path.join(lbtest.SRCDIR, "policies")):
        shutil.copy(os.path.join(lbtest.SRCDIR, "policies", f), POLICIES)
    P = lbtest.Platform(gw_args=["--loops", str(LOOPS), "--metrics", "127.0.0.1:0",
                                 "--policies", POLICIES])


def tearDownModule():
    if P is not None:
        P.close()
    shutil.rmtree(POLICIES, ignore_errors=True)


def scrape(platform):
    m = re.search(r"metrics: http://(127\.0\.0\.1:\d+)/metrics", platform.gw_log_text())
    assert m is not None, platform.gw_log_text()[-2000:]
    with urllib.request.urlopen("http://%s/metrics" % m.group(1), timeout=10) as r:
        return r.read().decode()


def per_loop(text, name):
    """{loop: value} of a per-loop family."""
    return {int(m.group(1)): float(m.group(2))
            for m in re.finditer(r'^%s\{loop="(\d+)"\} (\S+)$' % name, text, re.M)}


def connect(platform, client="consumer-newborn"):
    ctx = ssl.create_default_context(cafile=os.path.join(platform.pki, "client-ca.pem"))
    ctx.load_cert_chain(*platform.client_files(client))
    conn = http.client.HTTPSConnection("127.0.0.1", platform.port, context=ctx, timeout=60)
    conn.connect()
    return conn


def call(conn, method, path, body=None):
    """One request on a kept-alive connection: (status, decoded JSON body)."""
    headers = {"Accept": "application/json"}
    if body is not None:
        body = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data)


def exchange_body(token, sub=NEWBORN):
    return {"bundle": "newborn",
            "requests": [{"subject": sub, "items": [ITEM], "consent": token}]}


def on_every(conns, fn):
    """fn(conn) on every connection at once, each from its own thread; the answers."""
    answers = [None] * len(conns)
    start = threading.Barrier(len(conns))

    def run(i):
        start.wait()
        try:
            answers[i] = fn(conns[i])
        except Exception as e:  # reported by the assertions on answers
            answers[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return answers


def wait_for(what, cond, timeout=60):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


class Loops(unittest.TestCase):

    def test_01_keepalive_connections_are_served_by_several_loops(self):
        before = scrape(P)
        self.assertRegex(before, r"(?m)^lianban_loops %d$" % LOOPS)
        accepted0 = per_loop(before, "lianban_loop_connections_accepted_total")
        self.assertEqual(sorted(accepted0), list(range(LOOPS)))
        conns = [connect(P) for _ in range(CONNS)]
        try:
            for _ in range(3):
                answers = on_every(conns, lambda c: call(c, "GET", "/v1/policies/newborn"))
                for a in answers:
                    self.assertEqual(a[0], 200, a)
                    self.assertEqual(a[1]["bundle"], "newborn")
            text = scrape(P)
            open_now = per_loop(text, "lianban_loop_connections")
            accepted = per_loop(text, "lianban_loop_connections_accepted_total")
            requests = per_loop(text, "lianban_loop_requests_total")
        finally:
            for c in conns:
                c.close()
        self.assertEqual(sum(open_now.values()), CONNS, open_now)
        self.assertEqual(sum(accepted.values()) - sum(accepted0.values()), CONNS, accepted)
        self.assertGreaterEqual(sum(requests.values()), 3 * CONNS, requests)
        # The kernel spread them: more than one loop took connections and served.
        self.assertGreater(len([i for i in accepted if accepted[i] > accepted0[i]]), 1,
                           accepted)
        self.assertGreater(len([i for i in requests if requests[i] > 0]), 1, requests)
        st, body = P.request("GET", "/v1/ready", client=None)
        self.assertEqual(st, 200, body)
        wait_for("the closed connections to be counted out",
                 lambda: sum(per_loop(scrape(P), "lianban_loop_connections").values()) == 0)

    def test_02_sighup_reaches_the_connections_of_every_loop(self):
        path = os.path.join(POLICIES, "newborn.json")
        with open(path) as f:
            original = f.read()
        conns = [connect(P) for _ in range(CONNS)]
        try:
            for a in on_every(conns, lambda c: call(c, "GET", "/v1/policies/newborn")):
                self.assertEqual(a[0], 200, a)
                self.assertNotEqual(a[1]["name"], "reloaded on every loop")
            policy = json.loads(original)
            policy["name"] = "reloaded on every loop"
            policy["consumers"] = ["school"]
            with open(path, "w") as f:
                json.dump(policy, f, ensure_ascii=False)
            P.sighup("reloaded:")
            # The same kept-alive connections, on whichever loop they are.
            for a in on_every(conns, lambda c: call(c, "GET", "/v1/policies/newborn")):
                self.assertEqual(a[0], 200, a)
                self.assertEqual(a[1]["name"], "reloaded on every loop")
            # Refused before any consent work: one token does for every connection.
            token = P.issue(NEWBORN, [ITEM])
            for a in on_every(conns, lambda c: call(c, "POST", "/v1/exchanges",
                                                    exchange_body(token))):
                self.assertEqual(a[0], 403, a)
                self.assertEqual(a[1]["error"]["code"], "forbidden_role", a)
            served = per_loop(scrape(P), "lianban_loop_connections")
            self.assertGreater(len([i for i in served if served[i] > 0]), 1, served)
        finally:
            for c in conns:
                c.close()
            with open(path, "w") as f:
                f.write(original)
            P.sighup("reloaded:")
        st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
        self.assertEqual(st, 200, body)

    def test_03_a_token_sent_on_many_connections_serves_once(self):
        token = P.issue(NEWBORN, [ITEM])
        conns = [connect(P) for _ in range(CONNS)]
        try:
            answers = on_every(conns, lambda c: call(c, "POST", "/v1/exchanges",
                                                     exchange_body(token)))
            accepted = per_loop(scrape(P), "lianban_loop_connections")
        finally:
            for c in conns:
                c.close()
        self.assertGreater(len([i for i in accepted if accepted[i] > 0]), 1, accepted)
        ok = [a for a in answers if a[0] == 200]
        self.assertEqual(len(ok), 1, answers)
        for a in answers:
            if a[0] != 200:
                self.assertEqual(a[0], 409, a)
                self.assertEqual(a[1]["error"]["code"], "consent_replayed", a)


class Drain(unittest.TestCase):
    """SIGTERM while exchanges wait for a slow department on every loop."""

    def test_sigterm_finishes_the_exchanges_of_every_loop(self):
        n = 12
        p = lbtest.Platform(sim_args=["--delay", "nhc=1500"],
                            gw_args=["--loops", str(LOOPS), "--metrics", "127.0.0.1:0"])
        try:
            tokens = [p.issue(NEWBORN, [ITEM]) for _ in range(n)]
            conns = [connect(p) for _ in range(n)]
            before = p.sim_stats()["total"]
            answers = [None] * n
            threads = []

            def run(i):
                try:
                    answers[i] = call(conns[i], "POST", "/v1/exchanges",
                                      exchange_body(tokens[i]))
                except Exception as e:
                    answers[i] = e

            for i in range(n):
                threads.append(threading.Thread(target=run, args=(i,)))
                threads[-1].start()
            # Every exchange has reached the department, which holds its answer.
            wait_for("the exchanges to reach the department",
                     lambda: p.sim_stats()["total"] - before >= n)
            busy = per_loop(scrape(p), "lianban_loop_connections")
            self.assertGreater(len([i for i in busy if busy[i] > 0]), 1, busy)
            p.gw.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(120)
            self.assertEqual(p.gw.wait(60), 0)
            for a in answers:
                self.assertIsInstance(a, tuple, a)
                self.assertEqual(a[0], 200, a)
                self.assertEqual(a[1]["results"][0]["status"], "ok", a)
            for c in conns:
                c.close()
            self.assertIn("stopped; journal holds", p.gw_log_text())
        finally:
            p.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
