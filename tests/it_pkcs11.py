"""Integration: a seal key that stays in a PKCS#11 token (docs/seals.md).

A SoftHSM2 token is made in a temporary directory (SOFTHSM2_CONF), a P-256
key pair is generated inside it with pkcs11-tool, and its certificate is
issued under the demo seal root.  lianband is started with the seal "nhc-hsm"
configured by seals/nhc-hsm.pkcs11 (a PKCS#11 URI; no key file exists), and
the documents of concurrent exchanges are sealed by the token and verified
offline by lianctl and by the outsider script.

Skips (exit 77) only when SoftHSM2, pkcs11-tool or the OpenSSL pkcs11 engine
is not installed (Debian: softhsm2, opensc, libengine-pkcs11-openssl)."""

import copy
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
from cryptography import x509

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d, b64e  # noqa: E402

ITEM = "birth_medical_certificate"
OUTSIDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verify_seal_outsider.py")
SEAL = "nhc-hsm"
TOKEN = "lianban-seals"
PIN = "246810"
MODULES = ["/usr/lib/softhsm/libsofthsm2.so",
           "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
           "/usr/local/lib/softhsm/libsofthsm2.so"]
P = None
TMP = None


def missing():
    """Why the test cannot run here, or None."""
    for tool in ("softhsm2-util", "pkcs11-tool", "openssl"):
        if shutil.which(tool) is None:
            return "%s is not installed" % tool
    if softhsm_module() is None:
        return "libsofthsm2.so is not installed"
    out = subprocess.run(["openssl", "version", "-e"], capture_output=True, text=True).stdout
    enginesdir = out.split('"')[1] if '"' in out else ""
    if not os.path.exists(os.path.join(enginesdir, "pkcs11.so")):
        return "the OpenSSL pkcs11 engine is not installed (libengine-pkcs11-openssl)"
    return None


def softhsm_module():
    for m in MODULES:
        if os.path.exists(m):
            return m
    return None


def run(*args, **kw):
    r = subprocess.run(list(args), capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError("%s failed:\n%s%s" % (" ".join(args), r.stdout, r.stderr))
    return r.stdout


def make_token(tmp):
    """A SoftHSM2 token holding one P-256 key pair; returns the key's URI."""
    tokens = os.path.join(tmp, "tokens")
    os.makedirs(tokens)
    conf = os.path.join(tmp, "softhsm2.conf")
    with open(conf, "w") as f:
        f.write("directories.tokendir = %s\nobjectstore.backend = file\n"
                "log.level = ERROR\n" % tokens)
    os.environ["SOFTHSM2_CONF"] = conf
    module = softhsm_module()
    run("softhsm2-util", "--init-token", "--free", "--label", TOKEN,
        "--so-pin", "13579", "--pin", PIN)
    run("pkcs11-tool", "--module", module, "--token-label", TOKEN, "--login", "--pin", PIN,
        "--keypairgen", "--key-type", "EC:prime256v1", "--label", SEAL, "--id", "5e41")
    return "pkcs11:token=%s;object=%s;type=private?module-path=%s&pin-value=%s" % (
        TOKEN, SEAL, module, PIN)


def make_certs(tmp, uri):
    """A copy of the demo PKI plus seals/nhc-hsm.pem (issued by the seal root
    for the token's key) and seals/nhc-hsm.pkcs11; returns the directory."""
    certs = os.path.join(tmp, "certs")
    shutil.copytree(lbtest.demo_pki(), certs)
    seals = os.path.join(certs, "seals")
    # The certificate request is signed by a throwaway key; -force_pubkey puts
    # the token's public key into the certificate.
    pub = os.path.join(tmp, "hsm-pub.pem")
    run("pkcs11-tool", "--module", softhsm_module(), "--token-label", TOKEN,
        "--read-object", "--type", "pubkey", "--label", SEAL, "-o", pub + ".der")
    run("openssl", "pkey", "-pubin", "-inform", "DER", "-in", pub + ".der", "-out", pub)
    csr = os.path.join(tmp, "hsm.csr")
    run("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", os.devnull,
        "-subj", "/O=lianban demo/CN=nhc", "-out", csr)
    ext = os.path.join(tmp, "ext.cnf")
    with open(ext, "w") as f:
        f.write("[seal]\nbasicConstraints = critical,CA:false\n"
                "keyUsage = critical,digitalSignature,nonRepudiation\n"
                "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(certs, "seal-root.pem"),
        "-CAkey", os.path.join(certs, "seal-root.key"), "-force_pubkey", pub, "-CAcreateserial",
        "-CAserial", os.path.join(tmp, "serial"), "-days", "30", "-sha256",
        "-extfile", ext, "-extensions", "seal", "-out", os.path.join(seals, SEAL + ".pem"))
    ref = os.path.join(seals, SEAL + ".pkcs11")
    with open(ref, "w") as f:
        f.write(uri + "\n")
    os.chmod(ref, 0o600)
    return certs, pub


class HSMPlatform(lbtest.Platform):
    """The demo platform with nhc-birth sealed by the token seal nhc-hsm."""

    certs = None

    def write_specs(self):
        super().write_specs()
        self.pki = self.certs
        path = os.path.join(self.specs, "nhc-birth.json")
        with open(path) as f:
            spec = json.load(f)
        spec["seal"] = SEAL
        lbtest.write_json(self.specs, "nhc-birth.json", spec)


def setUpModule():
    global P, TMP
    TMP = tempfile.mkdtemp(prefix="lianban-pkcs11-")
    uri = make_token(TMP)
    HSMPlatform.certs, _ = make_certs(TMP, uri)
    # A short window: concurrent exchanges make several batches, signed by the
    # token from the worker threads at the same time.
    P = HSMPlatform(gw_args=["--seal-window", "1"])


def tearDownModule():
    if P is not None:
        P.close()
    shutil.rmtree(TMP, ignore_errors=True)


class TokenSeal(unittest.TestCase):

    def test_01_no_key_file(self):
        seals = os.path.join(P.pki, "seals")
        self.assertFalse(os.path.exists(os.path.join(seals, SEAL + ".key")))
        mode = stat.S_IMODE(os.stat(os.path.join(seals, SEAL + ".pkcs11")).st_mode)
        self.assertEqual(mode & 0o077, 0)

    def test_02_exchanges_sealed_by_the_token_verify_offline(self):
        answers = P.concurrent_exchanges(NEWBORN, [ITEM],
                                         [P.issue(NEWBORN, [ITEM]) for _ in range(8)])
        with open(os.path.join(P.pki, "seals", SEAL + ".pem"), "rb") as f:
            hsm_cert = x509.load_pem_x509_certificate(f.read())
        root = os.path.join(P.pki, "seal-root.pem")
        for i, (status, body) in enumerate(answers):
            self.assertEqual(status, 200, body)
            (r,) = body["results"]
            self.assertEqual(r["status"], "ok", r)
            claim, payload = lbtest.verify_seal(r["seal"], b64d(r["document_bytes"]), root)
            self.assertEqual(claim["seal"], SEAL)
            prot = msgpack.unpackb(msgpack.unpackb(b64d(r["seal"]["batch"]))[0], raw=False)
            self.assertEqual(prot["alg"], "ES256")
            # The batch was signed by the token's key: its certificate is in x5c.
            self.assertEqual(prot["kid"], lbtest.kid_of(hsm_cert))
            path = lbtest.write_json(TMP, "hsm-%d.json" % i, body)
            out = P.ctl("seal", "verify", path)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("seal %s, ES256" % SEAL, out.stdout)
            out = subprocess.run([sys.executable, OUTSIDER, path, root], capture_output=True,
                                 text=True, timeout=120)
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("seal ok: issuer nhc, seal %s, ES256" % SEAL, out.stdout)

        # A changed signature byte fails, so the checks above are real.
        body = copy.deepcopy(answers[0][1])
        seal = body["results"][0]["seal"]
        b = b64d(seal["batch"])
        seal["batch"] = b64e(b[:-1] + bytes([b[-1] ^ 1]))
        out = P.ctl("seal", "verify", lbtest.write_json(TMP, "hsm-bad.json", body))
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("batch signature does not verify", out.stdout)

    def test_03_reload_loads_the_token_seal_again(self):
        P.gw.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(P.gw_log, errors="replace") as f:
                log = f.read()
            if "reloaded:" in log or "reload failed" in log:
                break
            time.sleep(0.05)
        self.assertIn("reloaded:", log)
        status, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
        self.assertEqual(status, 200, body)
        (r,) = body["results"]
        self.assertEqual(r["status"], "ok", r)
        claim, _ = lbtest.verify_seal(r["seal"], b64d(r["document_bytes"]),
                                      os.path.join(P.pki, "seal-root.pem"))
        self.assertEqual(claim["seal"], SEAL)

    def test_04_wrong_pin_is_refused_at_start(self):
        seals = os.path.join(P.pki, "seals")
        ref = os.path.join(seals, SEAL + ".pkcs11")
        with open(ref) as f:
            good = f.read()
        try:
            with open(ref, "w") as f:
                f.write(good.replace("pin-value=" + PIN, "pin-value=000000"))
            out = subprocess.run([lbtest.LIANBAND, "--listen", "127.0.0.1:0", "--data",
                                  os.path.join(TMP, "var-badpin"), "--certs", P.pki,
                                  "--policies", os.path.join(lbtest.SRCDIR, "policies"),
                                  "--adapters", P.specs], capture_output=True, text=True,
                                 timeout=60)
            self.assertNotEqual(out.returncode, 0, out.stderr)
            self.assertIn(SEAL, out.stderr)
            self.assertIn("PKCS#11", out.stderr)
            # Neither lianband nor the engine prints the PIN.
            self.assertNotIn("000000", out.stderr)
        finally:
            with open(ref, "w") as f:
                f.write(good)


if __name__ == "__main__":
    why = missing()
    if why is not None:
        print("SKIP: PKCS#11 seals not tested: " + why)
        sys.exit(77)
    unittest.main(verbosity=2)
