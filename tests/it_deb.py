"""Integration: the Debian package (debian/, docs/operations.md).

Checks the lianban_*.deb and lianban-sim_*.deb that "make deb" left in the
build directory: their file lists (the daemon in /usr/sbin, the client, the
unit, the console, the default policies and adapter specs as conffiles in
/etc/lianban, the data directory, the man pages the sources have), their
dependencies and unit, and their maintainer scripts, run against stub
commands that record what they would do to the system (the lianban system
user, the data directory's owner, the unit enabled but not started on a
first install, restarted after an upgrade).  Then the programs extracted
from the packages run a platform: the packaged lianband with the packaged
policies, adapter specs and console, the packaged deptsim and lianctl;
health, the console and a sealed exchange answer.

The test builds the packages itself ("make deb", about a minute on two
cores, without the package build's own run of the unit tests, which "make
check" runs anyway) and requires lintian to report no error.  LB_TEST_DEB=0
checks the packages an earlier "make deb" left instead, and skips (exit 77)
when there are none."""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d  # noqa: E402

BUILD = os.environ.get("LB_TEST_DEB", "1") != "0"
ITEM = "birth_medical_certificate"
# The man pages the package must carry once their sources exist.
MAN_PAGES = ("lianband.8", "lianctl.1", "lianband.conf.5")
DEB = {}        # package name -> path of its .deb
ROOT = None     # the packages' files, extracted


def find_debs():
    for name in ("lianban", "lianban-sim"):
        found = sorted(glob.glob(os.path.join(lbtest.BUILDDIR, name + "_*.deb")),
                       key=os.path.getmtime)
        if found:
            DEB[name] = found[-1]


def setUpModule():
    global ROOT
    if BUILD:
        log = os.path.join(lbtest.BUILDDIR, "tests", "it_deb.build.log")
        # A make of its own, not a part of the "make check" that runs the test.
        env = {k: v for k, v in os.environ.items()
               if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
        env["DEB_BUILD_OPTIONS"] = "nocheck"
        with open(log, "w") as f:
            r = subprocess.run(["make", "-C", lbtest.BUILDDIR, "deb"], stdout=f,
                               stderr=subprocess.STDOUT, env=env)
        if r.returncode != 0:
            with open(log) as f:
                raise RuntimeError("make deb failed:\n" + f.read()[-6000:])
    find_debs()
    ROOT = tempfile.mkdtemp(prefix="lianban-deb-")
    for deb in DEB.values():
        subprocess.run(["dpkg-deb", "-x", deb, ROOT], check=True)


def tearDownModule():
    if ROOT is not None:
        shutil.rmtree(ROOT, ignore_errors=True)


def deb_files(name):
    """The paths a package holds, without the leading "." ("/usr/sbin/lianband")."""
    out = subprocess.run(["dpkg-deb", "--fsys-tarfile", DEB[name]], capture_output=True,
                         check=True).stdout
    names = subprocess.run(["tar", "-t"], input=out, capture_output=True, check=True).stdout
    return {n[1:].rstrip("/") or "/" for n in names.decode().split("\n") if n}


def deb_field(name, field):
    return subprocess.run(["dpkg-deb", "-f", DEB[name], field], capture_output=True,
                          text=True, check=True).stdout.strip()


class Package(unittest.TestCase):
    def test_files(self):
        files = deb_files("lianban")
        for path in ("/usr/sbin/lianband", "/usr/bin/lianctl", "/var/lib/lianban",
                     "/usr/share/lianban/console/index.html", "/etc/lianban/endpoints.json",
                     "/usr/share/doc/lianban/copyright"):
            self.assertIn(path, files)
        self.assertTrue({"/lib/systemd/system/lianband.service",
                         "/usr/lib/systemd/system/lianband.service"} & files, "no unit")
        # Every default policy and adapter spec of the sources.
        for pattern, where in (("policies/*.json", "/etc/lianban/policies/"),
                               ("adapters/specs/*.json", "/etc/lianban/adapters/specs/")):
            for f in glob.glob(os.path.join(lbtest.SRCDIR, pattern)):
                self.assertIn(where + os.path.basename(f), files)
        # The demo tools are lianban-sim's, and no demo key is in either package.
        self.assertNotIn("/usr/bin/deptsim", files)
        sim = deb_files("lianban-sim")
        self.assertIn("/usr/bin/deptsim", sim)
        self.assertIn("/usr/bin/lianban-mkdemo", sim)
        self.assertFalse([f for f in files | sim if f.endswith(".key")])
        # Every man page the sources have.
        for page in MAN_PAGES:
            if glob.glob(os.path.join(lbtest.SRCDIR, "**", page + "*"), recursive=True):
                self.assertIn("/usr/share/man/man%s/%s.gz" % (page[-1], page), files)

    def test_conffiles(self):
        tmp = tempfile.mkdtemp(prefix="lianban-debctl-")
        try:
            subprocess.run(["dpkg-deb", "-e", DEB["lianban"], tmp], check=True)
            with open(os.path.join(tmp, "conffiles")) as f:
                conffiles = set(f.read().split())
        finally:
            shutil.rmtree(tmp)
        etc = {f for f in deb_files("lianban") if f.startswith("/etc/")
               and os.path.isfile(os.path.join(ROOT, f[1:]))}
        self.assertTrue(etc)
        self.assertEqual(etc, conffiles)

    def test_control(self):
        depends = deb_field("lianban", "Depends")
        self.assertIn("adduser", depends)
        self.assertIn("libsystemd0", depends)
        # The packaged daemon speaks sd_notify: it links libsystemd.
        out = subprocess.run(["readelf", "-d", os.path.join(ROOT, "usr/sbin/lianband")],
                             capture_output=True, text=True, check=True).stdout
        self.assertIn("libsystemd.so", out)

    def test_unit(self):
        unit = glob.glob(os.path.join(ROOT, "*lib/systemd/system/lianband.service")) + \
            glob.glob(os.path.join(ROOT, "usr/lib/systemd/system/lianband.service"))
        self.assertTrue(unit)
        with open(unit[0]) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^Type=notify$")
        self.assertRegex(text, r"(?m)^ExecStart=/usr/sbin/lianband --config "
                               r"/etc/lianban/lianband\.conf$")
        self.assertRegex(text, r"(?m)^User=lianban$")
        self.assertRegex(text, r"(?m)^ReadWritePaths=-/var/lib/lianban$")

    def test_lintian(self):
        if not BUILD:
            self.skipTest("lintian checks the packages the test builds (not LB_TEST_DEB=0)")
        if not shutil.which("lintian"):
            self.skipTest("lintian is not installed")
        changes = sorted(glob.glob(os.path.join(lbtest.BUILDDIR, "lianban_*.changes")),
                         key=os.path.getmtime)
        self.assertTrue(changes)
        out = subprocess.run(["lintian", changes[-1]], capture_output=True, text=True)
        errors = [line for line in out.stdout.split("\n") if line.startswith("E:")]
        self.assertEqual(errors, [], out.stdout + out.stderr)


class MaintainerScripts(unittest.TestCase):
    """lianban's postinst, run with stubs of the commands it calls that log
    their arguments instead of changing the system."""

    STUBS = ("adduser", "chown", "chmod", "deb-systemd-helper", "deb-systemd-invoke",
             "systemctl", "dpkg-statoverride", "getent")

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lianban-postinst-")
        subprocess.run(["dpkg-deb", "-e", DEB["lianban"], os.path.join(self.tmp, "DEBIAN")],
                       check=True)
        self.bin = os.path.join(self.tmp, "bin")
        self.log = os.path.join(self.tmp, "calls")
        os.mkdir(self.bin)
        for name in self.STUBS:
            path = os.path.join(self.bin, name)
            with open(path, "w") as f:
                # getent finds no user and dpkg-statoverride no override: a first install.
                f.write('#!/bin/sh\necho "%s $*" >>"%s"\n%s\n' % (
                    name, self.log, "exit 2" if name == "getent" else
                    "exit 1" if name == "dpkg-statoverride" else "exit 0"))
            os.chmod(path, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def run_script(self, script, *args, systemd=False):
        """Runs DEBIAN/script with args; returns the stubs' calls.  With
        systemd, the script's test for a running systemd (the directory
        /run/systemd/system) finds a directory of the test's instead."""
        if not os.path.exists(os.path.join(self.tmp, "DEBIAN", script)):
            return []
        with open(os.path.join(self.tmp, "DEBIAN", script)) as f:
            text = f.read()
        if systemd:
            run = os.path.join(self.tmp, "run", "systemd", "system")
            os.makedirs(run, exist_ok=True)
            text = text.replace("/run/systemd/system", run)
        path = os.path.join(self.tmp, script + ".sh")
        with open(path, "w") as f:
            f.write(text)
        env = dict(os.environ, PATH=self.bin + ":/usr/bin:/bin")
        open(self.log, "w").close()
        r = subprocess.run(["/bin/sh", path] + list(args), env=env, capture_output=True,
                           text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        with open(self.log) as f:
            return [c for c in f.read().split("\n") if c]

    def postinst(self, *args, systemd=False):
        return self.run_script("postinst", *args, systemd=systemd)

    def starts(self, calls):
        """The calls that start, stop or restart the unit."""
        return [c for c in calls if c.startswith(("deb-systemd-invoke", "systemctl"))
                and re.search(r"\b(start|stop|restart|try-restart)\b", c)]

    def test_first_install(self):
        calls = self.postinst("configure")
        adduser = [c for c in calls if c.startswith("adduser ")]
        self.assertEqual(len(adduser), 1, calls)
        self.assertRegex(adduser[0], r"--system\b")
        self.assertRegex(adduser[0], r"--group\b")
        self.assertRegex(adduser[0], r"--home /var/lib/lianban\b")
        self.assertTrue(adduser[0].endswith(" lianban"), adduser[0])
        self.assertIn("chown lianban:lianban /var/lib/lianban", calls)
        self.assertIn("chmod 0700 /var/lib/lianban", calls)
        self.assertIn("deb-systemd-helper enable lianband.service", calls)
        # Nothing starts, even under systemd: lianband needs its PKI and
        # configuration first.
        self.assertEqual(self.starts(calls), [])
        self.assertEqual(self.starts(self.postinst("configure", systemd=True)), [])

    def test_upgrade_restarts_a_running_gateway(self):
        # The old gateway keeps running while dpkg replaces the files ...
        self.assertEqual(self.starts(self.run_script("preinst", "upgrade", "0.0.9",
                                                     systemd=True)), [])
        # ... and is restarted on the new ones, if it was running.
        calls = self.postinst("configure", "0.0.9", systemd=True)
        self.assertEqual(self.starts(calls), ["deb-systemd-invoke try-restart lianband.service"])

    def test_reconfigure_keeps_the_user(self):
        # getent finds the user now.
        with open(os.path.join(self.bin, "getent"), "w") as f:
            f.write('#!/bin/sh\necho "getent $*" >>"%s"\necho lianban:x:100:100::/:/bin/false\n'
                    % self.log)
        calls = self.postinst("configure", "0.0.9")
        self.assertFalse([c for c in calls if c.startswith("adduser ")], calls)
        self.assertIn("chown lianban:lianban /var/lib/lianban", calls)


class DpkgInstall(unittest.TestCase):
    """dpkg installs the packages in a copy of this machine's root and the
    installed gateway serves as its own user (tests/deb_install.sh)."""

    def test_install_and_serve(self):
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("chroot"):
            self.skipTest("installing needs root, unshare and chroot")
        tmp = tempfile.mkdtemp(prefix="lianban-dpkg-")
        try:
            debs = os.path.join(tmp, "debs")
            os.mkdir(debs)
            for deb in DEB.values():
                shutil.copy(deb, debs)
            out = subprocess.run(["/bin/sh", os.path.join(lbtest.SRCDIR, "tests",
                                                           "deb_install.sh"),
                                  debs, os.path.join(tmp, "root")],
                                 capture_output=True, text=True, timeout=300)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(out.stdout, end="")
        if out.returncode == 77:
            self.skipTest(out.stdout + out.stderr)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("ok: dpkg purged both packages", out.stdout, out.stderr)


class Installed(unittest.TestCase):
    """The extracted programs serve a platform."""

    @classmethod
    def setUpClass(cls):
        adapters = os.path.join(ROOT, "etc", "lianban", "adapters", "specs")

        class PackagedPlatform(lbtest.Platform):
            def write_specs(self):
                """The packaged adapter specs, pointed at this platform's simulator."""
                os.makedirs(self.specs, exist_ok=True)
                for f in glob.glob(os.path.join(adapters, "*.json")):
                    with open(f) as src:
                        text = src.read().replace("127.0.0.1:8701",
                                                  "127.0.0.1:%d" % self.sim_port)
                    with open(os.path.join(self.specs, os.path.basename(f)), "w") as dst:
                        dst.write(text)

        cls.saved = (lbtest.LIANBAND, lbtest.LIANCTL, lbtest.DEPTSIM)
        lbtest.LIANBAND = os.path.join(ROOT, "usr", "sbin", "lianband")
        lbtest.LIANCTL = os.path.join(ROOT, "usr", "bin", "lianctl")
        lbtest.DEPTSIM = os.path.join(ROOT, "usr", "bin", "deptsim")
        cls.P = PackagedPlatform(
            sim_args=["--data", os.path.join(ROOT, "usr", "share", "lianban",
                                             "families.json")],
            gw_args=["--policies", os.path.join(ROOT, "etc", "lianban", "policies"),
                     "--console", os.path.join(ROOT, "usr", "share", "lianban", "console")])

    @classmethod
    def tearDownClass(cls):
        lbtest.LIANBAND, lbtest.LIANCTL, lbtest.DEPTSIM = cls.saved
        cls.P.close()

    def test_serves(self):
        P = self.P
        with open(P.gw_log) as f:
            log = f.read()
        self.assertIn("console: ", log)
        self.assertNotIn("not found", log)
        status, body = P.request("GET", "/v1/health")
        self.assertEqual(status, 200, body)
        out = P.ctl("health")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        status, body = P.request("GET", "/console/index.html", accept="text/html")
        self.assertEqual(status, 200)
        token = P.issue(NEWBORN, [ITEM])
        status, body = P.exchange(NEWBORN, [ITEM], token)
        self.assertEqual(status, 200, json.dumps(body, ensure_ascii=False)[:2000])
        (r,) = body["results"]
        self.assertEqual(r["status"], "ok", r)
        # The packaged build seals: an outsider verifies with the seal root alone.
        lbtest.verify_seal(r["seal"], b64d(r["document_bytes"]),
                           os.path.join(P.pki, "seal-root.pem"))


if __name__ == "__main__":
    if BUILD:
        missing = [p for p in ("dpkg-buildpackage", "dh") if shutil.which(p) is None]
        if missing:
            print("SKIP: building the packages needs %s (Debian packages dpkg-dev and "
                  "debhelper)" % " and ".join(missing))
            sys.exit(77)
    else:
        find_debs()
        if sorted(DEB) != ["lianban", "lianban-sim"]:
            print("SKIP: LB_TEST_DEB=0 and no lianban_*.deb and lianban-sim_*.deb in %s; "
                  "run \"make deb\" first" % lbtest.BUILDDIR)
            sys.exit(77)
    unittest.main(verbosity=2)
