"""Integration: lianband's Prometheus listener (--metrics), scraped by the
real Prometheus server, which is then asked through its HTTP query API
about the exchanges the test just made."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

PROMETHEUS = "/usr/bin/prometheus"
ITEM = "birth_medical_certificate"
EXCHANGES = 3
P = None

# One sample line of the text exposition format: name, optional labels, value.
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{%s(,%s)*\})? '
                    r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$' % (LABEL, LABEL))


def setUpModule():
    global P
    P = lbtest.Platform(gw_args=["--metrics", "127.0.0.1:0"])


def tearDownModule():
    if P is not None:
        P.close()


def metrics_url():
    m = re.search(r"metrics: http://(127\.0\.0\.1:\d+)/metrics", P.gw_log_text())
    if m is None:
        raise AssertionError("no metrics line in the log:\n" + P.gw_log_text()[-2000:])
    return "http://%s/metrics" % m.group(1), m.group(1)


def scrape():
    with urllib.request.urlopen(metrics_url()[0], timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


class Metrics(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        before = P.sim_stats()["total"]
        for _ in range(EXCHANGES):
            token = P.issue(NEWBORN, [ITEM])
            status, body = P.exchange(NEWBORN, [ITEM], token)
            assert status == 200, body
        cls.dept_calls = P.sim_stats()["total"] - before
        # A client without a certificate, and a reload.
        status, _ = P.request("GET", "/v1/journal/checkpoint", client=None)
        assert status == 401, status
        P.sighup("reloaded:")

    def test_01_text_format_parses(self):
        status, ctype, text = scrape()
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
        self.assertTrue(text.endswith("\n"))
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                continue
            self.assertRegex(line, SAMPLE)
        # Label values are bounded: never a subject, never an exchange id.
        self.assertNotIn(NEWBORN, text)
        self.assertIn('lianban_exchanges_total{bundle="newborn",consumer="newborn",code="ok"} %d'
                      % EXCHANGES, text)
        self.assertRegex(text, r'lianban_build_info\{version="[^"]+"\} 1')
        self.assertRegex(text, r'lianban_exchanges_in_flight 0')
        self.assertRegex(text, r'lianban_journal_tree_size [1-9]')
        self.assertRegex(text, r'lianban_seal_batch_claims_count\{alg="[^"]+"\} [1-9]')
        self.assertIn('lianban_tls_failures_total{reason="no_certificate"} 1\n', text)
        self.assertIn('lianban_reloads_total{result="ok"} 1\n', text)
        self.assertRegex(text, r'lianban_journal_commits_total [1-9]')
        self.assertRegex(text, r'lianban_journal_map_used_bytes [1-9]')
        # Every exchange claimed its consent token's jti.
        m = re.search(r'^lianban_replay_store_entries (\d+)$', text, re.M)
        self.assertIsNotNone(m)
        self.assertGreaterEqual(int(m.group(1)), EXCHANGES)

    def test_02_other_paths_and_methods(self):
        url = metrics_url()[0]
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(url.replace("/metrics", "/v1/health"), timeout=10)
        self.assertEqual(cm.exception.code, 404)
        req = urllib.request.Request(url, data=b"", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=10)
        self.assertEqual(cm.exception.code, 405)

    def test_03_prometheus_scrapes_and_answers(self):
        if not os.access(PROMETHEUS, os.X_OK):
            self.fail("%s is missing: apt-get install prometheus (./quickstart)" % PROMETHEUS)
        tmp = tempfile.mkdtemp(prefix="lianban-prom-")
        port = lbtest.free_port()
        target = metrics_url()[1]
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: lianban\n    static_configs:\n"
                    "      - targets: ['%s']\n" % target)
        log = open(os.path.join(tmp, "prometheus.log"), "w")
        prom = subprocess.Popen([PROMETHEUS, "--config.file=" + os.path.join(tmp, "prometheus.yml"),
                                 "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                                 "--web.listen-address=127.0.0.1:%d" % port],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            def query(q):
                url = "http://127.0.0.1:%d/api/v1/query?%s" % (
                    port, urllib.parse.urlencode({"query": q}))
                try:
                    with urllib.request.urlopen(url, timeout=10) as r:
                        body = json.load(r)
                except OSError:
                    return None
                res = body["data"]["result"]
                return float(res[0]["value"][1]) if res else None

            deadline = time.time() + 120
            exchanges = None
            while time.time() < deadline:
                self.assertIsNone(prom.poll(), "prometheus exited")
                exchanges = query('sum(lianban_exchanges_total{code="ok"})')
                if exchanges is not None:
                    break
                time.sleep(0.5)
            self.assertEqual(exchanges, EXCHANGES, "prometheus never scraped lianband")
            self.assertEqual(query('up{job="lianban"}'), 1)
            self.assertEqual(query('sum(lianban_exchange_items_total{code="ok"})'), EXCHANGES)
            self.assertEqual(query("sum(lianban_department_request_seconds_count)"),
                             self.dept_calls)
            self.assertEqual(query('sum(lianban_department_requests_total{code="ok"})'),
                             self.dept_calls)
            self.assertEqual(query('sum(lianban_department_request_seconds_bucket{le="+Inf"})'),
                             self.dept_calls)
            self.assertEqual(query("lianban_exchanges_in_flight"), 0)
        finally:
            prom.terminate()
            try:
                prom.wait(30)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
            log.close()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
