"""Integration: lianband.conf, and start errors that say what to fix.

The gateway is started from / with nothing but --config: every setting comes
from the file, relative paths from the file's folder.  The command line
overrides the file; an unknown key, a bad value or a missing file stops the
start with FILE:LINE and the reason.  SIGHUP reads the file again: a setting
that may change while running takes effect (the client rate limit, whose
429 answer names the values in force; the policies folder), one that needs a
restart is logged as such and keeps its value, and a broken file keeps the
running settings.  A start that cannot go on logs an error, not a warning,
naming the file and what to change.  The tests run in order on one
platform."""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402

P = None


def conf_text(settings):
    return "# written by it_config.py\n" + "".join(
        "%s = %s\n" % (k, v) for k, v in settings.items())


class ConfPlatform(lbtest.Platform):
    """The platform of lbtest, with a gateway that gets only --config."""

    def base_settings(self):
        return {
            "listen": "127.0.0.1:0",
            "data": "var",                     # relative: the file's folder
            "certs": self.pki,
            "policies": os.path.join(lbtest.SRCDIR, "policies"),
            "adapters": "specs",
            "endpoints": "endpoints.json",
            "id": "lianban-demo",
            "client-rate": "1",
            "client-burst": "1",
        }

    def write_conf(self, settings):
        self.conf = os.path.join(self.tmp, "lianband.conf")
        with open(self.conf, "w") as f:
            f.write(conf_text(settings))

    def start_gateway(self, extra=()):
        if not hasattr(self, "conf"):
            self.write_conf(self.base_settings())
        self.starts = getattr(self, "starts", 0) + 1
        self.gw_log = os.path.join(self.tmp, "lianband.%d.log" % self.starts)
        with open(self.gw_log, "w") as log:
            p = subprocess.Popen(lbtest.WRAP + [lbtest.LIANBAND, "--config", self.conf]
                                 + list(extra), cwd="/", stdout=log, stderr=subprocess.STDOUT)
        self.gw = p
        self.procs.append(p)
        return lbtest._wait_listening(p, self.gw_log, "lianband")


def setUpModule():
    global P
    P = ConfPlatform()


def tearDownModule():
    if P is not None:
        P.close()


def gw_log():
    return P.gw_log_text()


def sighup(expect):
    P.sighup(expect)


def limit_in_force():
    """(rate, burst) as the gateway's first 429 names them."""
    for _ in range(200):
        st, ans = P.request("GET", "/v1/policies", client="auditor-audit1")
        if st == 429:
            m = re.search(r"limit of (\d+) requests per second per client \(burst (\d+)\)",
                          ans["error"]["message"])
            return int(m.group(1)), int(m.group(2))
        assert st == 200, (st, ans)
    raise AssertionError("200 health requests and no 429")


def run_lianband(*args, cwd="/"):
    out = subprocess.run(lbtest.WRAP + [lbtest.LIANBAND] + list(args), cwd=cwd,
                         capture_output=True, text=True, timeout=60)
    assert not lbtest.MEMCHECK.search(out.stderr), out.stderr
    return out


def bad_conf(name, text):
    path = os.path.join(P.tmp, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class Config(unittest.TestCase):

    def test_01_a_config_file_alone_starts_the_gateway(self):
        self.assertIn("settings: %s" % P.conf, gw_log())
        st, ans = P.request("GET", "/v1/health", client=None)
        self.assertEqual(st, 200, ans)
        # An exchange: the adapters, endpoints and data folder named relative to the file.
        tok = P.issue(lbtest.NEWBORN, ["birth_medical_certificate"])
        st, ans = P.exchange(lbtest.NEWBORN, ["birth_medical_certificate"], tok)
        self.assertEqual(st, 200, ans)
        self.assertEqual(ans["results"][0]["status"], "ok", ans)
        self.assertTrue(os.path.isdir(os.path.join(P.tmp, "var", "registry")))
        self.assertEqual(limit_in_force(), (1, 1))

    def test_02_the_command_line_overrides_the_file(self):
        out = run_lianband("--config", P.conf, "--client-burst", "7", "--print-config")
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertIn("client-burst = 7", lines)
        self.assertIn("client-rate = 1", lines)
        self.assertIn("adapters = %s" % os.path.join(P.tmp, "specs"), lines)
        self.assertIn("data = %s" % os.path.join(P.tmp, "var"), lines)
        # The running daemon too: a second gateway of the same file, burst from the flag.
        P.stop_gateway()
        P.port = P.start_gateway(["--client-burst", "3", "--data", os.path.join(P.tmp, "var2")])
        self.assertEqual(limit_in_force(), (1, 3))

    def test_03_a_wrong_file_stops_the_start_with_its_line(self):
        cases = [
            ("unknown.conf", "listen = 127.0.0.1:0\n\nlisen = 127.0.0.1:1\n",
             "unknown.conf:3: unknown key \"lisen\""),
            ("badvalue.conf", "workers = 2\nclient-rate = many\n",
             "badvalue.conf:2: client-rate must be 1 to 1000000, not \"many\""),
            ("twice.conf", "id = a\nid = b\n", "twice.conf:2: id is set twice (also on line 1)"),
            ("section.conf", "[lianband]\nid = a\n", "section.conf:2: lianband.conf has no sections"),
            ("syntax.conf", "id = a\njust words\n", "syntax.conf:2: not a KEY = VALUE line"),
        ]
        for name, text, want in cases:
            path = bad_conf(name, text)
            for extra in ([], ["--print-config"]):
                out = run_lianband("--config", path, *extra)
                self.assertEqual(out.returncode, 1, out.stderr)
                self.assertIn("lianband: error: " + os.path.join(P.tmp, want), out.stderr)
                self.assertNotIn("listening on", out.stderr)
                self.assertEqual(out.stdout, "")
        missing = os.path.join(P.tmp, "no-such.conf")
        out = run_lianband("--config", missing)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("lianband: error: %s: cannot read: No such file or directory" % missing,
                      out.stderr)
        # A wrong value on the command line is a usage error.
        out = run_lianband("--config", P.conf, "--workers", "65")
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn("--workers must be 1 to 64", out.stderr)

    def test_04_sighup_applies_live_settings_and_names_the_others(self):
        before = P.port
        settings = P.base_settings()
        # client-burst changes in the file too, but the command line's 3 stays in force.
        settings.update({"client-rate": "5", "client-burst": "4", "listen": "127.0.0.1:1",
                         "workers": "3"})
        # Only the newborn policy, from a folder of its own.
        pol = os.path.join(P.tmp, "policies-one")
        os.makedirs(pol, exist_ok=True)
        shutil.copy(os.path.join(lbtest.SRCDIR, "policies", "newborn.json"), pol)
        settings["policies"] = "policies-one"
        P.write_conf(settings)
        sighup("reloaded: ")
        log = gw_log()
        self.assertIn("settings: client-rate = 5 (from %s line 9), was 1" % P.conf, log)
        self.assertNotIn("settings: client-burst", log)
        self.assertIn("settings: policies = %s (from %s line 5), was " % (pol, P.conf), log)
        self.assertIn("settings: listen = 127.0.0.1:1 (from %s line 2) needs a restart; "
                      "keeping 127.0.0.1:0" % P.conf, log)
        self.assertIn("settings: workers = 3 (from %s line 11) needs a restart; keeping 2"
                      % P.conf, log)
        self.assertRegex(log, r"reloaded: \d+ authorities, 1 policies")
        self.assertEqual(limit_in_force(), (5, 3))
        # Still on the address it started with.
        st, ans = P.request("GET", "/v1/health", client=None)
        self.assertEqual(st, 200, ans)
        self.assertEqual(P.port, before)

    def test_05_sighup_with_a_broken_file_keeps_the_running_settings(self):
        with open(P.conf, "a") as f:
            f.write("seal-batch = 0\n")
        sighup("reload failed")
        self.assertIn("reload failed, keeping the running configuration: %s:12: seal-batch "
                      "must be 1 to 256, not \"0\"" % P.conf, gw_log())
        st, ans = P.request("GET", "/v1/health", client=None)
        self.assertEqual(st, 200, ans)
        self.assertEqual(limit_in_force(), (5, 3))
        # Mended, the file applies again.
        settings = P.base_settings()
        settings["client-rate"] = "2"
        P.write_conf(settings)
        sighup("reloaded: ")
        self.assertIn("settings: client-rate = 2 (from %s line 9), was 5" % P.conf, gw_log())
        self.assertEqual(limit_in_force(), (2, 3))

    def test_06_start_errors_are_errors_that_name_the_fix(self):
        empty = os.path.join(P.tmp, "empty-pki")
        os.makedirs(empty, exist_ok=True)
        settings = P.base_settings()
        settings.update({"certs": "empty-pki", "data": "var3"})
        path = bad_conf("nopki.conf", conf_text(settings))
        out = run_lianband("--config", path)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("lianband: error: %s/trust/consent: No such file or directory; " % empty,
                      out.stderr)
        self.assertIn("certs/mkdemo", out.stderr)
        self.assertIn("or set certs in %s or --certs (now %s, from %s line 4)"
                      % (path, empty, path), out.stderr)
        self.assertNotIn("warning:", out.stderr)

        # The demo defaults, run where there is no demo PKI: the hint names mkdemo.
        work = os.path.join(P.tmp, "elsewhere")
        os.makedirs(work, exist_ok=True)
        out = run_lianband("--listen", "127.0.0.1:0", cwd=work)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("lianband: error: certs/demo/trust/consent: No such file or directory; ",
                      out.stderr)
        self.assertIn("run certs/mkdemo DIR", out.stderr)
        self.assertIn("or set certs in lianband.conf or --certs (now certs/demo, the default)",
                      out.stderr)
        self.assertNotIn("warning:", out.stderr)

        # A data folder that cannot be made.
        blocker = os.path.join(P.tmp, "a-file")
        open(blocker, "w").close()
        settings = P.base_settings()
        settings["data"] = "a-file/var"
        path = bad_conf("nodata.conf", conf_text(settings))
        out = run_lianband("--config", path)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertRegex(out.stderr, r"lianband: error: %s/a-file/var: cannot create the data "
                         r"directory: Not a directory; .*or set data in %s or --data"
                         % (re.escape(P.tmp), re.escape(path)))

        # An address in use: the running gateway's.
        settings = P.base_settings()
        settings.update({"listen": "127.0.0.1:%d" % P.port, "data": "var4"})
        path = bad_conf("busy.conf", conf_text(settings))
        out = run_lianband("--config", path)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("lianband: error: cannot listen on 127.0.0.1:%d" % P.port, out.stderr)
        self.assertIn("or set listen in %s or --listen" % path, out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
