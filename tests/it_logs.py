"""Integration: structured logs (log-format logfmt and json).

Every line the gateway writes is one event that parses, with ts (RFC 3339,
UTC, milliseconds), level and event: the start line (whose message still says
"listening on HOST:PORT"), each exchange with its id, consumer, bundle, item
count, result per item class and latency, a department failure with its
department, adapter and code, a refused client with the reason, a reload, an
audit read.  No line carries a subject's ID number: the whole log of the run
is searched for every one the test used."""

import json
import os
import re
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402

ITEM = "birth_medical_certificate"
SUBJECTS = [lbtest.NEWBORN, lbtest.FATHER, lbtest.MOTHER]
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LOGFMT_PAIR = r'[A-Za-z_][A-Za-z0-9_.]*=(?:"(?:[^"\\]|\\.)*"|[^ "=]*)'
LOGFMT_LINE = re.compile(r"^%s(?: %s)*$" % (LOGFMT_PAIR, LOGFMT_PAIR))


def parse_logfmt(line):
    if not LOGFMT_LINE.match(line):
        raise ValueError("not logfmt: %r" % line)
    out = {}
    for m in re.finditer(r'([A-Za-z_][A-Za-z0-9_.]*)=("(?:[^"\\]|\\.)*"|[^ "=]*)', line):
        v = m.group(2)
        out[m.group(1)] = json.loads(v) if v.startswith('"') else v
    return out


def run_platform(fmt):
    """Runs exchanges and the other logged events on a gateway logging fmt;
    returns the text of its log once it stopped."""
    p = lbtest.Platform(gw_args=["--log-format", fmt])
    try:
        tok = p.issue(lbtest.NEWBORN, [ITEM])
        st, ans = p.exchange(lbtest.NEWBORN, [ITEM], tok)
        assert st == 200, (st, ans)
        # A token for another subject: refused per subject.
        tok = p.issue(lbtest.NEWBORN, [ITEM])
        st, ans = p.exchange(lbtest.FATHER, [ITEM], tok)
        assert st != 200, (st, ans)
        # Two subjects in one exchange.
        t1 = p.issue(lbtest.MOTHER, ["marriage_certificate"], bundle="newborn")
        p.request("POST", "/v1/exchanges", {
            "bundle": "newborn",
            "requests": [{"subject": lbtest.MOTHER, "items": [ITEM], "consent": t1}]})
        # Audit reads.
        p.journal()
        st, _ = p.request("GET", "/v1/journal/records?subject=" + lbtest.NEWBORN,
                          client="auditor-audit1")
        # A client without a certificate on a route that needs one.
        st, _ = p.request("GET", "/v1/policies", client=None)
        assert st == 401, st
        p.sighup("reload")
        # The department is gone: the exchange's department failure.
        p.sim.terminate()
        p.sim.wait()
        tok = p.issue(lbtest.NEWBORN, [ITEM])
        st, ans = p.exchange(lbtest.NEWBORN, [ITEM], tok)
        assert st != 200, (st, ans)
        assert p.stop_gateway(signal.SIGTERM) == 0
        return p.gw_log_text()
    finally:
        p.close()


class Logs(unittest.TestCase):

    def check(self, text, parse):
        events = []
        for line in text.splitlines():
            if lbtest.MEMCHECK.search(line) or line.startswith("=="):
                continue
            try:
                ev = parse(line)
            except ValueError as e:
                self.fail("line does not parse: %r (%s)" % (line, e))
            self.assertIsInstance(ev, dict, line)
            self.assertRegex(ev.get("ts", ""), TS, line)
            self.assertIn(ev.get("level"), ("info", "warning", "error", "debug"), line)
            self.assertTrue(ev.get("event"), line)
            events.append(ev)
        for sub in SUBJECTS:
            self.assertNotIn(sub, text)
        by = {}
        for ev in events:
            by.setdefault(ev["event"], []).append(ev)
        start = by["start"][0]
        self.assertRegex(start["msg"], r"^listening on 127\.0\.0\.1:\d+$")
        ex = by["exchange"]
        self.assertGreaterEqual(len(ex), 4, ex)
        first = ex[0]
        self.assertRegex(first["id"], r"^[A-Za-z0-9_-]{22}$")
        self.assertEqual(first["consumer"], "newborn")
        self.assertEqual(first["bundle"], "newborn")
        self.assertEqual(first["items"], "1")
        self.assertEqual(first["results"], "ok:1")
        self.assertEqual(first["result"], "served")
        float(first["latency_ms"])
        self.assertTrue(any(e["result"] != "served" for e in ex), ex)
        df = by["department_failure"][0]
        self.assertEqual(df["code"], "department_unavailable")
        self.assertTrue(df["dept"] and df["adapter"], df)
        self.assertEqual(ex[-1]["results"], "department_unavailable:1")
        self.assertIn("reason", by["tls_refused"][0])
        self.assertEqual(by["reload"][0]["result"], "ok")
        self.assertTrue(by["audit_read"], by.keys())
        self.assertEqual(by["audit_read"][0]["auditor"], "audit1")

    def test_logfmt(self):
        self.check(run_platform("logfmt"), parse_logfmt)

    def test_json(self):
        self.check(run_platform("json"), json.loads)


if __name__ == "__main__":
    unittest.main(verbosity=2)
