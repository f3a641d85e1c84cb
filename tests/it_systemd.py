"""Integration: lianband as a systemd service (docs/operations.md).

The unit made from systemd/lianband.service.in is filled in, passes
"systemd-analyze verify" without a word and scores "OK" or better in
"systemd-analyze security" (both when systemd-analyze is installed; neither
needs systemd as PID 1).  The sd_notify protocol is checked without systemd:
the test binds the datagram socket a service manager would, names it in
NOTIFY_SOCKET, starts lianband and reads what it says: READY=1 once it
listens, STATUS= lines with the journal's size and the work in flight (after
start, after each reload and every few seconds), RELOADING=1 and READY=1
around a SIGHUP reload, whether it installed the new configuration or
refused a broken one, and STOPPING=1 on SIGTERM."""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

UNIT = os.path.join(lbtest.BUILDDIR, "systemd", "lianband.service")
ANALYZE = shutil.which("systemd-analyze")
# configure's verdict on libsystemd (AM_TESTS_ENVIRONMENT); run by hand, assume it.
LIBSYSTEMD = os.environ.get("LB_LIBSYSTEMD", "yes") == "yes"
ITEM = "birth_medical_certificate"
STATUS = re.compile(r"journal (\d+) records; (\d+) in flight")
# A bound on each wait for a message, so that a silent daemon fails the test
# instead of hanging it; the periodic STATUS= line comes every 5 s.
WAIT_S = 30


def unit_settings(path):
    """The unit's assignments as (key, value) pairs, in order."""
    out = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", ";", "[")):
                key, _, value = line.partition("=")
                out.append((key, value))
    return out


class UnitFile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lianban-unit-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def checkable_copy(self):
        """The unit with ExecStart naming the lianband just built: verify
        refuses a unit whose program does not exist, and the installed
        path (sbindir) need not exist on the machine that runs the tests."""
        with open(UNIT) as f:
            text = f.read()
        text, n = re.subn(r"^ExecStart=\S+/lianband ", "ExecStart=%s " % lbtest.LIANBAND,
                          text, flags=re.M)
        self.assertEqual(n, 1, "no ExecStart=.../lianband line")
        path = os.path.join(self.tmp, "lianband.service")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_filled_in(self):
        with open(UNIT) as f:
            text = f.read()
        self.assertNotIn("@", text.replace("@system-service", "").replace("@privileged", "")
                         .replace("@resources", ""), "a placeholder was left in the unit")
        s = dict(unit_settings(UNIT))
        self.assertEqual(s["Type"], "notify" if LIBSYSTEMD else "exec")
        self.assertRegex(s["ExecStart"], r"^/\S+/lianband --config /\S+/lianban/lianband\.conf$")
        self.assertEqual(s["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertEqual(s["User"], "lianban")
        self.assertEqual(s["StateDirectory"], "lianban")
        self.assertEqual(s["ProtectSystem"], "strict")
        self.assertEqual(s["CapabilityBoundingSet"], "")
        self.assertEqual(s["NoNewPrivileges"], "yes")

    def analyze(self, *args):
        """systemd-analyze ARGS on the checkable copy of the unit; it must succeed."""
        if ANALYZE is None:
            self.skipTest("systemd-analyze is not installed")
        out = subprocess.run([ANALYZE] + list(args) + [self.checkable_copy()],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        return out

    def test_verify(self):
        # --man=no: the man pages the unit names are installed by make install,
        # not on this machine; tests of their own check them.
        out = self.analyze("verify", "--man=no")
        self.assertEqual(out.stdout + out.stderr, "", "systemd-analyze verify complained")

    def test_security(self):
        out = self.analyze("security", "--offline=true")
        m = re.search(r"Overall exposure level for lianband\.service: (\d+\.\d+) (\w+)",
                      out.stdout)
        self.assertIsNotNone(m, out.stdout + out.stderr)
        # systemd's words, from most to least exposed: DANGEROUS, UNSAFE,
        # EXPOSED, MEDIUM, OK, SAFE, PERFECT.
        self.assertIn(m.group(2), ("OK", "SAFE", "PERFECT"), out.stdout)
        self.assertLess(float(m.group(1)), 5.0, out.stdout)


class Notify(unittest.TestCase):
    """A service manager's socket, read by the test."""

    @classmethod
    def setUpClass(cls):
        if not LIBSYSTEMD:
            raise unittest.SkipTest("lianband was built without libsystemd")
        cls.tmp = tempfile.mkdtemp(prefix="lianban-notify-")
        cls.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        cls.sock.bind(os.path.join(cls.tmp, "notify"))
        cls.sock.settimeout(WAIT_S)
        # A copy of the demo policies, which the test breaks and mends.
        cls.policies = os.path.join(cls.tmp, "policies")
        os.mkdir(cls.policies)
        for f in glob.glob(os.path.join(lbtest.SRCDIR, "policies", "*.json")):
            shutil.copy(f, cls.policies)
        os.environ["NOTIFY_SOCKET"] = os.path.join(cls.tmp, "notify")
        try:
            cls.P = lbtest.Platform(gw_args=["--policies", cls.policies])
        except BaseException:
            cls.sock.close()
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise
        finally:
            del os.environ["NOTIFY_SOCKET"]
        cls.seen = []

    @classmethod
    def tearDownClass(cls):
        cls.sock.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        cls.P.close()

    def next_message(self):
        """The next datagram, as {KEY: value}."""
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            self.fail("lianband said nothing for %d s; so far: %r" % (WAIT_S, self.seen))
        msg = dict(line.partition("=")[::2] for line in data.decode().split("\n") if line)
        self.seen.append(msg)
        return msg

    def expect(self, key):
        """Reads until a message sets key; returns it.  Only STATUS= lines
        may come before it."""
        while True:
            msg = self.next_message()
            if key in msg:
                return msg
            self.assertEqual(set(msg), {"STATUS"}, "%s came before %s" % (msg, key))

    def status(self):
        """The journal size and the work in flight of the next STATUS= line."""
        msg = self.expect("STATUS")
        m = STATUS.search(msg["STATUS"])
        self.assertIsNotNone(m, msg)
        return int(m.group(1)), int(m.group(2)), msg["STATUS"]

    def journal_size(self):
        status, ck = self.P.request("GET", "/v1/journal/checkpoint", client="auditor-audit1")
        self.assertEqual(status, 200, ck)
        return ck["size"]

    def test_protocol(self):
        P = self.P
        # READY=1 once it listens, the first thing it says.
        self.assertEqual(self.expect("READY"), {"READY": "1"})
        self.assertEqual(self.seen[0], {"READY": "1"})
        with open(P.gw_log) as f:
            self.assertIn("listening on 127.0.0.1:%d" % P.port, f.read())
        records, inflight, text = self.status()
        self.assertIn("listening on 127.0.0.1:%d" % P.port, text)

        # An exchange grows the journal; the STATUS= line after a reload shows it.
        token = P.issue(NEWBORN, [ITEM])
        status, body = P.exchange(NEWBORN, [ITEM], token)
        self.assertEqual(status, 200, body)
        before = self.journal_size()
        self.assertGreater(before, records)
        P.gw.send_signal(signal.SIGHUP)
        self.assertIn("MONOTONIC_USEC", self.expect("RELOADING"))
        self.assertEqual(self.expect("READY"), {"READY": "1"})
        records, inflight, text = self.status()
        self.assertGreaterEqual(records, before)
        self.assertLessEqual(records, self.journal_size())
        self.assertNotIn("refused", text)

        # A broken policy: the reload is refused, and that ends it as well.
        broken = os.path.join(self.policies, "broken.json")
        with open(broken, "w") as f:
            f.write("{ not json")
        P.gw.send_signal(signal.SIGHUP)
        self.expect("RELOADING")
        self.assertEqual(self.expect("READY"), {"READY": "1"})
        records, inflight, text = self.status()
        self.assertIn("last reload refused", text)
        # Mended, the next reload installs and the STATUS= line says no more.
        os.unlink(broken)
        P.gw.send_signal(signal.SIGHUP)
        self.expect("RELOADING")
        self.expect("READY")
        records, inflight, text = self.status()
        self.assertNotIn("refused", text)
        status, body = P.request("GET", "/v1/health")
        self.assertEqual(status, 200, body)

        # Left alone, it still says how it is, every few seconds.
        msg = self.next_message()
        self.assertEqual(set(msg), {"STATUS"}, msg)
        self.assertRegex(msg["STATUS"], STATUS)

        # SIGTERM: STOPPING=1, then a clean exit, and no READY=1 after it.
        P.gw.send_signal(signal.SIGTERM)
        self.expect("STOPPING")
        self.assertEqual(P.gw.wait(60), 0)
        self.sock.settimeout(0)
        try:
            while True:
                self.assertNotIn("READY", self.next_message())
        except BlockingIOError:
            pass


if __name__ == "__main__":
    unittest.main(verbosity=2)
