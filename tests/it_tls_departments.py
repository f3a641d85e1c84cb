"""Integration: https department endpoints are mutual TLS.  The gateway checks
the department server's certificate against departments/ca.pem and the
endpoint's address, presents gateway-client.pem, keeps its pooled connections
working after the department closed idle ones, and a department whose TLS is
wrong (a server certificate from another CA, a client CA that is not the
platform's) or a gateway without its TLS files fails only that department's
items, with a message that says why."""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import MOTHER, NEWBORN, b64d  # noqa: E402

DATA = os.path.join(lbtest.SRCDIR, "adapters", "data", "families.json")
# The mother's own items: psb, mca and nhsa, none of them a guardian proof.
MOTHER_ITEMS = ["resident_id_card", "marriage_certificate", "medical_insurance"]
NEWBORN_KID = ["birth_medical_certificate", "vaccination_record", "household_register",
               "medical_insurance", "social_security_card"]
# Idle connections are closed by the simulator after IDLE_S; PAUSE_S is longer.
IDLE_S = 2
PAUSE_S = IDLE_S + 1.5
REQUEST_LINE = re.compile(r"^deptsim: 127\.0\.0\.1:(\d+) CN=(\S+) /(\w+)/", re.M)

OTHER = None    # a CA unrelated to the demo PKI, with a server certificate, and a
                # certificate of the department CA for another host


def setUpModule():
    global OTHER
    OTHER = tempfile.mkdtemp(prefix="lianban-tls-")
    ossl = ["openssl"]

    def run(*args):
        subprocess.run(ossl + list(args), check=True, capture_output=True)
    ca, ca_key = os.path.join(OTHER, "ca.pem"), os.path.join(OTHER, "ca.key")
    srv, srv_key = os.path.join(OTHER, "server.pem"), os.path.join(OTHER, "server.key")
    csr, ext = os.path.join(OTHER, "server.csr"), os.path.join(OTHER, "ext.cnf")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:false\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", ca_key, "-out", ca, "-subj", "/CN=another CA", "-days", "2",
        "-addext", "basicConstraints=critical,CA:true",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", srv_key, "-out", csr, "-subj", "/CN=localhost")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-days", "2", "-extfile", ext, "-out", srv)
    depts = os.path.join(lbtest.demo_pki(), "departments")
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:false\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:elsewhere.example,IP:192.0.2.7\n")
    run("x509", "-req", "-in", csr, "-CA", os.path.join(depts, "ca.pem"),
        "-CAkey", os.path.join(depts, "ca.key"), "-CAserial", os.path.join(OTHER, "d.srl"),
        "-CAcreateserial", "-days", "2", "-extfile", ext,
        "-out", os.path.join(OTHER, "elsewhere.pem"))


def tearDownModule():
    if OTHER is not None:
        shutil.rmtree(OTHER, ignore_errors=True)


class TlsPlatform(lbtest.Platform):
    """A platform whose simulator serves HTTPS (tls=True) or HTTP, and whose
    specs send some departments to simulators of their own (extra: dept ->
    the simulator's TLS arguments)."""

    def __init__(self, tls=True, extra=None, gw_args=()):
        pki = lbtest.demo_pki()
        self.tls = tls
        self.extra = dict(extra or {})
        self.extra_ports = {}
        args = ["--verbose", "--idle-timeout", str(IDLE_S)]
        if tls:
            args += ["--tls-dir", pki]
        super().__init__(sim_args=args, gw_args=gw_args)

    def write_specs(self):
        for dept, args in self.extra.items():
            self.extra_ports[dept] = self.start_extra_sim(dept, args)
        super().write_specs()
        main = "http%s://127.0.0.1:%d/" % ("s" if self.tls else "", self.sim_port)
        for f in glob.glob(os.path.join(self.specs, "*.json")):
            with open(f) as src:
                text = src.read().replace("http://127.0.0.1:%d/" % self.sim_port, main)
            for dept, port in self.extra_ports.items():
                text = text.replace(main + dept + "/", "https://127.0.0.1:%d/%s/" % (port, dept))
            with open(f, "w") as dst:
                dst.write(text)

    def start_extra_sim(self, dept, args):
        log = self.sim_log_path(dept)
        p = subprocess.Popen(lbtest.WRAP + [lbtest.DEPTSIM, "--listen", "127.0.0.1:0",
                                            "--data", DATA, "--verbose"] + list(args),
                             stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return lbtest._wait_listening(p, log, "deptsim for " + dept)

    def sim_log_path(self, dept=None):
        return os.path.join(self.tmp, "deptsim-%s.log" % dept if dept else "deptsim.log")

    def requests_seen(self, dept=None):
        """[(client port, CN, department)] of every request a simulator logged."""
        with open(self.sim_log_path(dept), errors="replace") as f:
            return [(int(p), cn, d) for p, cn, d in REQUEST_LINE.findall(f.read())]


def mother_exchange(P, items=MOTHER_ITEMS):
    st, body = P.exchange(MOTHER, items, P.issue(MOTHER, items))
    assert st == 200, body
    return {r["item"]: r for r in body["results"]}


class MutualTls(unittest.TestCase):
    """Every department behind https, served by the simulator in TLS mode."""

    @classmethod
    def setUpClass(cls):
        cls.P = TlsPlatform()

    @classmethod
    def tearDownClass(cls):
        cls.P.close()

    def test_01_newborn_bundle_over_mutual_tls(self):
        P = self.P
        with open(os.path.join(P.specs, "nhc-birth.json")) as f:
            self.assertIn('"https://127.0.0.1:%d/nhc/' % P.sim_port, f.read())
        reqs = [{"subject": NEWBORN, "items": NEWBORN_KID,
                 "consent": P.issue(NEWBORN, NEWBORN_KID, act=MOTHER, rel="guardian")},
                {"subject": MOTHER, "items": MOTHER_ITEMS,
                 "consent": P.issue(MOTHER, MOTHER_ITEMS)}]
        st, body = P.request("POST", "/v1/exchanges", {"bundle": "newborn", "requests": reqs})
        self.assertEqual(st, 200, body)
        self.assertEqual(len(body["results"]), len(NEWBORN_KID) + len(MOTHER_ITEMS))
        seal_root = os.path.join(P.pki, "seal-root.pem")
        for r in body["results"]:
            self.assertEqual(r["status"], "ok", r)
            doc_bytes = b64d(r["document_bytes"])
            claim, _ = lbtest.verify_seal(r["seal"], doc_bytes, seal_root)
            self.assertEqual(claim["item"], r["item"])
            self.assertEqual(r["document"]["holder"]["id"], r["subject"])
        # The departments saw the gateway's client certificate.
        seen = P.requests_seen()
        self.assertGreaterEqual(len(seen), len(NEWBORN_KID) + len(MOTHER_ITEMS))
        self.assertEqual({cn for _, cn, _ in seen}, {"lianban-demo"})
        self.assertTrue({"psb", "nhc", "mca", "cdc", "nhsa", "hrss"} <= {d for _, _, d in seen})

    def test_02_pooled_connections_survive_idle_close(self):
        """Rounds of exchanges with pauses in which the simulator closes the
        idle connections: each round must open new ones and every item of
        every exchange must succeed."""
        P = self.P
        rounds = []
        for rnd in range(3):
            if rnd > 0:
                time.sleep(PAUSE_S)
            start = len(P.requests_seen())
            for _ in range(3):
                got = mother_exchange(P)
                for item in MOTHER_ITEMS:
                    self.assertEqual(got[item]["status"], "ok", got[item])
            rounds.append(P.requests_seen()[start:])
        for rnd in rounds:
            self.assertEqual(len(rnd), 3 * len(MOTHER_ITEMS), rounds)
        ports = [{p for p, _, _ in rnd} for rnd in rounds]
        # After a pause the closed connections were replaced, not reused.
        self.assertFalse(ports[0] & ports[1], rounds)
        self.assertFalse(ports[1] & ports[2], rounds)
        # Within a round the pool reused its connections.
        self.assertTrue(any(len(p) < len(rnd) for p, rnd in zip(ports, rounds)), rounds)

    def test_03_health_after_all(self):
        st, body = self.P.request("GET", "/v1/health", client=None)
        self.assertEqual((st, body["status"]), (200, "ok"))


class BrokenTls(unittest.TestCase):
    """mca behind simulators whose TLS the gateway must refuse, or that
    refuse the gateway; psb and nhsa stay behind the good simulator."""

    def check_only_mca_fails(self, P, why):
        for _ in range(2):   # and the failure does not wedge anything
            got = mother_exchange(P)
            self.assertEqual(got["resident_id_card"]["status"], "ok", got)
            self.assertEqual(got["medical_insurance"]["status"], "ok", got)
            r = got["marriage_certificate"]
            self.assertEqual(r["status"], "department_unavailable", r)
            self.assertNotIn("document", r)
            self.assertIn("department mca", r["message"])
            self.assertRegex(r["message"], why)
        st, body = P.request("GET", "/v1/health", client=None)
        self.assertEqual((st, body["status"]), (200, "ok"))

    def test_01_server_certificate_from_another_ca(self):
        P = TlsPlatform(extra={"mca": [
            "--tls", os.path.join(OTHER, "server.pem"), os.path.join(OTHER, "server.key"),
            os.path.join(lbtest.demo_pki(), "client-ca.pem")]})
        try:
            self.check_only_mca_fails(P, r"TLS handshake failed: certificate verify failed")
            self.assertEqual(P.requests_seen("mca"), [], "a request reached the impostor")
        finally:
            P.close()

    def test_02_department_requires_another_client_ca(self):
        pki = lbtest.demo_pki()
        P = TlsPlatform(extra={"mca": [
            "--tls", os.path.join(pki, "departments", "server.pem"),
            os.path.join(pki, "departments", "server.key"), os.path.join(OTHER, "ca.pem")]})
        try:
            self.check_only_mca_fails(P, r"TLS handshake failed: .+")
            self.assertEqual(P.requests_seen("mca"), [], "the department served a refused client")
        finally:
            P.close()

    def test_03_server_certificate_for_another_address(self):
        """The department CA's certificate, but for another host: the
        endpoint's address must be in it."""
        P = TlsPlatform(extra={"mca": [
            "--tls", os.path.join(OTHER, "elsewhere.pem"), os.path.join(OTHER, "server.key"),
            os.path.join(lbtest.demo_pki(), "client-ca.pem")]})
        try:
            self.check_only_mca_fails(P, r"TLS handshake failed: certificate verify failed: "
                                         r"IP address mismatch")
            self.assertEqual(P.requests_seen("mca"), [])
        finally:
            P.close()

    def test_04_gateway_without_its_tls_files(self):
        """Without gateway-client.pem/.key only the https department fails;
        the http ones keep working."""
        pki = lbtest.demo_pki()
        certs = tempfile.mkdtemp(prefix="lianban-certs-")
        try:
            shutil.copytree(pki, certs, dirs_exist_ok=True)
            for f in glob.glob(os.path.join(certs, "gateway-client.*")):
                os.unlink(f)
            P = TlsPlatform(tls=False, extra={"mca": ["--tls-dir", pki]},
                            gw_args=["--certs", certs])
            try:
                with open(os.path.join(P.specs, "psb-idcard.json")) as f:
                    self.assertIn('"http://127.0.0.1:%d/psb/' % P.sim_port, f.read())
                self.check_only_mca_fails(P, r"https endpoints need .*gateway-client")
                with open(P.gw_log, errors="replace") as f:
                    self.assertIn("gateway-client.pem", f.read())
                self.assertEqual(P.requests_seen("mca"), [])
            finally:
                P.close()
        finally:
            shutil.rmtree(certs, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
