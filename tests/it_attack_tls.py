"""Integration: client certificates and authority certificates (issue 10, item 6).

A copy of the demo PKI gets, made with the openssl CLI from its client CA:
client certificates with two OUs or two CNs (refused: the role or id would be
ambiguous), two ordinary consumer certificates of which one is revoked in a
CRL (CERTS/client-ca.crl, the default place) while the gateway runs, and
face-auth authority certificates that are expired, not yet valid, or whose key
usage lacks digitalSignature.

After the revocation and a SIGHUP the revoked certificate is refused on a new
connection, on a connection kept alive from before, and on a TLS session
resumed from before the revocation, while the other certificate still works
(also resumed).  A consent token signed by an unusable authority certificate
is consent_untrusted_issuer."""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
TMP = None      # scratch: the PKI copy, the openssl ca database
PKI = None      # TMP/certs, the gateway's --certs
P = None

CA_CNF = """
[ca]
default_ca = lb_ca

[lb_ca]
database = {work}/index.txt
serial = {work}/serial
rand_serial = yes
crlnumber = {work}/crlnumber
new_certs_dir = {work}/new
default_md = sha256
default_crl_days = 7
policy = lb_policy
unique_subject = no
copy_extensions = none

[lb_policy]
commonName = supplied

[ext_client]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth

[ext_signer]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature,nonRepudiation

[ext_nosig]
basicConstraints = critical,CA:false
keyUsage = critical,nonRepudiation

[ext_noku]
basicConstraints = critical,CA:false
"""


def ossl(*args):
    out = subprocess.run(["openssl"] + list(args), capture_output=True, text=True)
    assert out.returncode == 0, "openssl %s: %s" % (args[0], out.stdout + out.stderr)


def utc(offset_s):
    return time.strftime("%Y%m%d%H%M%SZ", time.gmtime(time.time() + offset_s))


def work(*names):
    return os.path.join(TMP, "work", *names)


def ca_args():
    return ["-batch", "-config", work("ca.cnf"), "-cert", os.path.join(PKI, "client-ca.pem"),
            "-keyfile", os.path.join(PKI, "client-ca.key")]


def client_cert(name, subject):
    """A P-256 client certificate issued by the PKI's client CA, subject kept verbatim."""
    key, csr, pem = work(name + ".key"), work(name + ".csr"), work(name + ".pem")
    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    ossl("req", "-new", "-key", key, "-subj", subject, "-out", csr)
    ossl("x509", "-req", "-in", csr, "-CA", os.path.join(PKI, "client-ca.pem"),
         "-CAkey", os.path.join(PKI, "client-ca.key"), "-CAcreateserial",
         "-CAserial", work("x509.srl"), "-days", "30", "-sha256",
         "-extfile", work("ca.cnf"), "-extensions", "ext_client", "-out", pem)
    return pem, key


def authority(name, ext, start_s, end_s):
    """A self-signed face-auth authority in trust/consent with its key in authorities/."""
    key = os.path.join(PKI, "authorities", name + ".key")
    ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
    os.chmod(key, 0o600)
    ossl("req", "-new", "-key", key, "-subj", "/CN=" + name, "-out", work(name + ".csr"))
    ossl("ca", "-batch", "-config", work("ca.cnf"), "-selfsign", "-keyfile", key,
         "-in", work(name + ".csr"), "-extensions", ext, "-notext",
         "-startdate", utc(start_s), "-enddate", utc(end_s),
         "-out", os.path.join(PKI, "trust", "consent", name + ".pem"))


def write_crl():
    ossl("ca", "-gencrl", *ca_args(), "-out", os.path.join(PKI, "client-ca.crl"))


def setUpModule():
    global TMP, PKI, P
    TMP = tempfile.mkdtemp(prefix="lianban-attack-tls-")
    PKI = os.path.join(TMP, "certs")
    try:
        make_pki()
        P = lbtest.Platform(gw_args=["--certs", PKI])
    except BaseException:
        shutil.rmtree(TMP, ignore_errors=True)
        raise


def make_pki():
    """The demo PKI's copy with the certificates, authorities and CRL of the tests."""
    shutil.copytree(lbtest.demo_pki(), PKI)
    os.makedirs(work("new"))
    with open(work("ca.cnf"), "w") as f:
        f.write(CA_CNF.format(work=work()))
    open(work("index.txt"), "w").close()
    with open(work("crlnumber"), "w") as f:
        f.write("01\n")
    client_cert("two-ou", "/O=lianban demo/OU=consumer/OU=admin/CN=newborn")
    client_cert("two-cn", "/O=lianban demo/OU=consumer/CN=newborn/CN=ops")
    client_cert("victim", "/O=lianban demo/OU=consumer/CN=newborn")
    client_cert("bystander", "/O=lianban demo/OU=consumer/CN=newborn")
    day = 86400
    authority("expiredauth", "ext_signer", -10 * day, -day)
    authority("futureauth", "ext_signer", day, 10 * day)
    authority("nosigauth", "ext_nosig", -day, 10 * day)
    authority("nokuauth", "ext_noku", -day, 10 * day)
    authority("goodauth", "ext_signer", -day, 10 * day)
    write_crl()     # nothing revoked yet, in the default place


def tearDownModule():
    try:
        if P is not None:
            P.close()
    finally:
        shutil.rmtree(TMP, ignore_errors=True)


def log_text():
    with open(P.gw_log, errors="replace") as f:
        return f.read()


def sighup_and_wait():
    """SIGHUP, then wait until the log says the reload ended."""
    before = len(re.findall(r"reloaded: |reload failed", log_text()))
    P.gw.send_signal(1)
    deadline = time.time() + 30
    while time.time() < deadline:
        text = log_text()
        done = re.findall(r"reloaded: .*|reload failed.*", text)
        if len(done) > before:
            return done[-1]
        time.sleep(0.05)
    raise AssertionError("no reload in the log:\n" + log_text())


class Client:
    """One certificate's TLS context; its connections can resume its sessions."""

    def __init__(self, name):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ctx.load_verify_locations(cafile=os.path.join(PKI, "client-ca.pem"))
        self.ctx.load_cert_chain(work(name + ".pem"), work(name + ".key"))

    def connect(self, session=None):
        sock = socket.create_connection(("127.0.0.1", P.port), timeout=30)
        return self.ctx.wrap_socket(sock, server_hostname="localhost", session=session)


def get(conn, path="/v1/policies"):
    """One keep-alive GET on conn; (status, decoded JSON body)."""
    conn.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\r\n"
                  % path).encode())
    f = conn.makefile("rb")
    status = int(f.readline().split()[1])
    length = 0
    while True:
        line = f.readline().strip()
        if not line:
            break
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    body = f.read(length)
    f.close()
    return status, json.loads(body)


class Names(unittest.TestCase):

    def refused(self, name, reason):
        st, body = P.request("GET", "/v1/policies", certfile=work(name + ".pem"),
                             keyfile=work(name + ".key"))
        self.assertEqual((st, body["error"]["code"]), (401, "unauthenticated"), body)
        self.assertIn(reason, log_text())

    def test_two_ous_refused(self):
        self.refused("two-ou", "the certificate names more than one OU")

    def test_two_cns_refused(self):
        self.refused("two-cn", "the certificate names more than one CN")

    def test_one_ou_one_cn_accepted(self):
        st, body = P.request("GET", "/v1/policies", certfile=work("bystander.pem"),
                             keyfile=work("bystander.key"))
        self.assertEqual(st, 200, body)


class Revocation(unittest.TestCase):

    def test_revoked_after_sighup(self):
        victim, bystander = Client("victim"), Client("bystander")
        # Before: both work; one victim connection stays open, and each
        # certificate leaves a session to resume later.
        kept = victim.connect()
        self.assertEqual(get(kept)[0], 200)
        c = victim.connect()
        self.assertEqual(get(c)[0], 200)
        victim_session = c.session
        c.close()
        c = bystander.connect()
        self.assertEqual(get(c)[0], 200)
        bystander_session = c.session
        c.close()
        self.assertIsNotNone(victim_session)

        ossl("ca", "-revoke", work("victim.pem"), *ca_args())
        write_crl()
        self.assertIn("reloaded", sighup_and_wait())

        # A new connection of the revoked certificate.
        c = victim.connect()
        st, body = get(c)
        c.close()
        self.assertEqual((st, body["error"]["code"]), (401, "unauthenticated"), body)
        self.assertIn("certificate revoked", log_text())
        # The connection kept alive from before the revocation.
        st, body = get(kept)
        kept.close()
        self.assertEqual((st, body["error"]["code"]), (401, "unauthenticated"), body)
        # A session resumed from before the revocation.
        c = victim.connect(session=victim_session)
        self.assertTrue(c.session_reused, "the server did not resume the session")
        st, body = get(c)
        c.close()
        self.assertEqual((st, body["error"]["code"]), (401, "unauthenticated"), body)
        # The other certificate, on a new and on a resumed connection.
        c = bystander.connect()
        self.assertEqual(get(c)[0], 200)
        c.close()
        c = bystander.connect(session=bystander_session)
        self.assertTrue(c.session_reused)
        self.assertEqual(get(c)[0], 200)
        c.close()
        # The demo's own consumer certificate is untouched.
        self.assertEqual(P.request("GET", "/v1/policies")[0], 200)


class CrlFiles(unittest.TestCase):
    """--crl names a file that must exist and be the client CA's."""

    def start(self, *args):
        data = tempfile.mkdtemp(dir=TMP)
        out = subprocess.run(lbtest.WRAP + [lbtest.LIANBAND, "--listen", "127.0.0.1:0",
                              "--data", data, "--certs", PKI,
                              "--policies", os.path.join(lbtest.SRCDIR, "policies"),
                              "--adapters", P.specs] + list(args),
                             capture_output=True, text=True, timeout=60)
        return out.returncode, out.stderr

    def test_missing_crl_file(self):
        rc, err = self.start("--crl", work("no-such.crl"))
        self.assertNotEqual(rc, 0)
        self.assertIn("no-such.crl", err)

    def test_crl_of_another_ca(self):
        key, crt = work("other-ca.key"), work("other-ca.pem")
        ossl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        ossl("req", "-new", "-x509", "-key", key, "-subj", "/CN=lianban demo platform CA",
             "-days", "3", "-out", crt)
        ossl("ca", "-gencrl", "-batch", "-config", work("ca.cnf"), "-cert", crt,
             "-keyfile", key, "-out", work("other.crl"))
        rc, err = self.start("--crl", work("other.crl"))
        self.assertNotEqual(rc, 0)
        self.assertIn("not signed by a client CA", err)


class Authorities(unittest.TestCase):
    """Authority certificates are used only when valid and allowed to sign."""

    def exchange(self, authority):
        token = lbtest.issue_independent(PKI, NEWBORN, [ITEM], authority=authority)
        return P.exchange(NEWBORN, [ITEM], token)

    def untrusted(self, authority, why):
        st, body = self.exchange(authority)
        self.assertEqual(st, 403, body)
        res = body["results"][0] if "results" in body else body["error"]
        code = res.get("status", res.get("code"))
        self.assertEqual(code, "consent_untrusted_issuer", body)
        self.assertIn(why, json.dumps(body))

    def test_expired(self):
        self.untrusted("expiredauth", "has expired")

    def test_not_yet_valid(self):
        self.untrusted("futureauth", "not yet valid")

    def test_key_usage_without_digital_signature(self):
        self.untrusted("nosigauth", "digitalSignature")

    def test_valid_ones_sign(self):
        for name in ("goodauth", "nokuauth"):
            st, body = self.exchange(name)
            self.assertEqual(st, 200, (name, body))
            self.assertEqual(body["results"][0]["status"], "ok", (name, body))


if __name__ == "__main__":
    unittest.main()
