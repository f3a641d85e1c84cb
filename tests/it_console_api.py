"""Integration: the gateway's side of the audit console, without a browser.

/console/ serves only the files loaded at start, by exact name, with fixed
content types and headers; GET /v1/journal/certificate gives the checkpoint
certificate; GET /v1/ops/summary counts the journal's traffic, bounded and
admin only; records queries filter by kind and code.  And the console's own
verifiers (console/lib/*.js, run in node) accept every inclusion and
consistency proof the gateway serves for a small journal, against roots
computed here independently, and reject each one with a bit flipped."""

import datetime
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import FATHER, MOTHER, NEWBORN, SRCDIR, b64d  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519  # noqa: E402

ITEM = "birth_medical_certificate"
NODE = shutil.which("node") or "/usr/bin/node"
P = None
CONSOLE = None          # a copy of console/ the gateway serves


def setUpModule():
    global P, CONSOLE
    CONSOLE = tempfile.mkdtemp(prefix="lianban-console-")
    shutil.rmtree(CONSOLE)
    shutil.copytree(os.path.join(SRCDIR, "console"), CONSOLE)
    with open(os.path.join(CONSOLE, ".hidden.js"), "w") as f:
        f.write("hidden")
    with open(os.path.join(CONSOLE, "notes.md"), "w") as f:
        f.write("not a served type")
    P = lbtest.Platform(gw_args=["--console", CONSOLE])
    st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
    assert st == 200, body
    st, body = P.exchange(MOTHER, ["resident_id_card"], P.issue(MOTHER, ["resident_id_card"]))
    assert st == 200, body
    st, body = P.exchange(FATHER, [ITEM], P.issue(FATHER, [ITEM], match=500))
    assert st == 403, body


def tearDownModule():
    if P is not None:
        P.close()
    if CONSOLE is not None:
        shutil.rmtree(CONSOLE, ignore_errors=True)


def raw(path, client="auditor-audit1", method="GET", headers=None):
    """(status, headers as a dict, body bytes) of one request."""
    ctx = ssl.create_default_context(cafile=os.path.join(P.pki, "client-ca.pem"))
    if client is not None:
        ctx.load_cert_chain(*P.client_files(client))
    conn = http.client.HTTPSConnection("127.0.0.1", P.port, context=ctx, timeout=30)
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    conn.close()
    return r.status, hdrs, body


class StaticFiles(unittest.TestCase):

    def test_index_and_types(self):
        for path, ctype, src in (("/console/", "text/html", "index.html"),
                                 ("/console/index.html", "text/html", "index.html"),
                                 ("/console/app.js", "text/javascript", "app.js"),
                                 ("/console/lib/verify.js", "text/javascript", "lib/verify.js"),
                                 ("/console/style.css", "text/css", "style.css"),
                                 ("/console/vendor/uplot/uPlot.min.css", "text/css",
                                  "vendor/uplot/uPlot.min.css")):
            st, h, body = raw(path)
            self.assertEqual(st, 200, path)
            self.assertTrue(h["content-type"].startswith(ctype), (path, h))
            with open(os.path.join(CONSOLE, src), "rb") as f:
                self.assertEqual(body, f.read(), path)
            self.assertEqual(h["x-content-type-options"], "nosniff")
            self.assertIn("default-src 'none'", h["content-security-policy"])
            self.assertIn("connect-src 'self'", h["content-security-policy"])
            self.assertEqual(h["cache-control"], "no-cache")
            self.assertNotIn("set-cookie", h)

    def test_etag_revalidation(self):
        st, h, _ = raw("/console/app.js")
        self.assertEqual(st, 200)
        st2, _, body = raw("/console/app.js", headers={"If-None-Match": h["etag"]})
        self.assertEqual((st2, body), (304, b""))
        st3, _, _ = raw("/console/app.js", headers={"If-None-Match": '"0000000000000000"'})
        self.assertEqual(st3, 200)

    def test_only_loaded_names(self):
        for path in ("/console/../Makefile.am", "/console/%2e%2e/Makefile.am",
                     "/console/lib/../app.js", "/console//app.js", "/console/.hidden.js",
                     "/console/notes.md", "/console/vendor/uplot/LICENSE", "/console/nope.js",
                     "/console/app.js/", "/console/APP.JS"):
            st, h, body = raw(path)
            self.assertEqual(st, 404, path)
            self.assertEqual(json.loads(body)["error"]["code"], "not_found", path)
        # A file put there after the start is not served either.
        with open(os.path.join(CONSOLE, "late.js"), "w") as f:
            f.write("late")
        self.assertEqual(raw("/console/late.js")[0], 404)

    def test_redirect_certificate_and_method(self):
        st, h, _ = raw("/console")
        self.assertEqual((st, h.get("location")), (301, "/console/"))
        self.assertEqual(raw("/console/", client=None)[0], 401)
        self.assertEqual(raw("/console/", method="POST")[0], 405)
        for who in ("admin-ops", "consumer-citizen", "department-nhc"):
            self.assertEqual(raw("/console/", client=who)[0], 200, who)

    def test_console_limits_at_start(self):
        tmp = tempfile.mkdtemp(prefix="lianban-console-big-")
        try:
            with open(os.path.join(tmp, "index.html"), "wb") as f:
                f.write(b"x" * (4 * 1024 * 1024 + 1))
            r = subprocess.run(lbtest.WRAP + [lbtest.LIANBAND, "--listen", "127.0.0.1:0",
                                "--data", os.path.join(tmp, "var"), "--certs", P.pki,
                                "--policies", os.path.join(SRCDIR, "policies"),
                                "--adapters", P.specs, "--console", tmp],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("larger than 4194304 bytes", r.stderr)
            self.assertNotIn("listening on", r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class Certificate(unittest.TestCase):

    def test_checkpoint_certificate_and_kid(self):
        st, body = P.request("GET", "/v1/journal/certificate", client="auditor-audit1")
        self.assertEqual(st, 200, body)
        with open(os.path.join(P.pki, "journal", "checkpoint.pem"), "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.assertEqual(b64d(body["certificate"]), cert.public_bytes(serialization.Encoding.DER))
        self.assertEqual(b64d(body["kid"]), lbtest.kid_of(cert))
        self.assertEqual(body["alg"], "ES256")
        st, ck = P.request("GET", "/v1/journal/checkpoint", client="auditor-audit1")
        prot, _, _, _ = lbtest.open_envelope(b64d(ck["envelope"]), "checkpoint")
        self.assertEqual(prot["kid"], b64d(body["kid"]))
        st, body = P.request("GET", "/v1/journal/certificate", client="admin-ops")
        self.assertEqual((st, body["error"]["code"]), (403, "forbidden_role"))


class Records(unittest.TestCase):

    def query(self, q):
        st, body = P.request("GET", "/v1/journal/records?limit=1000&" + q, client="auditor-audit1")
        self.assertEqual(st, 200, body)
        return [r["record"] for r in body["records"]]

    def test_kind_and_code(self):
        deny = self.query("kind=deny")
        self.assertEqual([(r["kind"], r["code"]) for r in deny], [("deny", "assurance_too_low")])
        self.assertEqual(self.query("code=assurance_too_low&kind=exchange")[0]["kind"], "exchange")
        items = self.query("kind=item&code=ok")
        self.assertEqual(sorted(r["item"] for r in items), sorted([ITEM, "resident_id_card"]))
        self.assertEqual(self.query("kind=item&code=department_timeout"), [])
        self.assertEqual(self.query("subject=%s&kind=item" % NEWBORN)[0]["item"], ITEM)

    def test_bad_kind_and_code(self):
        for q in ("kind=", "code=", "kind=" + "x" * 16, "code=" + "y" * 40):
            st, body = P.request("GET", "/v1/journal/records?" + q, client="auditor-audit1")
            self.assertEqual((st, body["error"]["code"]), (400, "bad_request"), q)


class OpsSummary(unittest.TestCase):

    def test_counts_match_the_journal(self):
        size = P.request("GET", "/v1/health", client=None)[1]["journal_size"]
        st, s = P.request("GET", "/v1/ops/summary?hours=2", client="admin-ops")
        self.assertEqual(st, 200, s)
        # Counts only: the summary adds no record to the journal.
        self.assertEqual(P.request("GET", "/v1/health", client=None)[1]["journal_size"], size)
        ck, leaves = P.journal()
        recs = [lbtest.msgpack.unpackb(x, raw=False) for x in leaves]
        self.assertEqual(s["minutes"], 120)
        self.assertEqual(s["minute_ms"], 60000)
        self.assertTrue(s["complete"])
        self.assertEqual(s["scan_limit"], 100000)
        self.assertGreaterEqual(s["scanned"], size)
        self.assertLessEqual(s["until_ms"] - s["since_ms"], 120 * 60000 + 1)
        self.assertEqual(s["exchanges"]["series"].keys(), {"newborn"})
        self.assertEqual(s["exchanges"]["total"], 3)
        self.assertEqual(sum(s["exchanges"]["series"]["newborn"]), 3)
        items = [r for r in recs if r["kind"] == "item"]
        self.assertEqual(s["items"]["total"], len(items))
        for d in {r["dept"] for r in items}:
            self.assertEqual(sum(s["items"]["series"][d]), sum(r["dept"] == d for r in items))
            self.assertEqual(len(s["items"]["series"][d]), 120)
        self.assertEqual(s["denials"], {"assurance_too_low": 1})
        self.assertEqual(s["codes"]["total"], len(items) + 1)
        dept = {d["dept"]: d for d in s["departments"]}
        nhc = [r["latency_us"] for r in items if r["dept"] == "nhc"]
        self.assertEqual(dept["nhc"]["items"], len(nhc))
        self.assertEqual(dept["nhc"]["errors"], 0)
        self.assertEqual(dept["nhc"]["max_us"], max(nhc))
        self.assertLessEqual(dept["nhc"]["p50_us"], dept["nhc"]["p99_us"])

    def test_hours_and_role(self):
        for q in ("hours=0", "hours=25", "hours=x", "hours=-1", "hours="):
            st, body = P.request("GET", "/v1/ops/summary?" + q, client="admin-ops")
            self.assertEqual((st, body["error"]["code"]), (400, "bad_request"), q)
        for who in ("auditor-audit1", "consumer-newborn"):
            st, body = P.request("GET", "/v1/ops/summary", client=who)
            self.assertEqual((st, body["error"]["code"]), (403, "forbidden_role"), who)
        st, s = P.request("GET", "/v1/ops/summary", client="admin-ops")
        self.assertEqual((st, s["minutes"]), (200, 180))


def other_checkpoint(alg, root_hex, cert_der=None):
    """A checkpoint envelope of alg made here: EdDSA signed with a fresh
    Ed25519 key and certificate; SM2 claimed over the gateway's certificate
    with a signature no browser can check."""
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ed-checkpoint")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(1)
                .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                .sign(key, None))
        cert_der = cert.public_bytes(serialization.Encoding.DER)
    cert = x509.load_der_x509_certificate(cert_der)
    prot_b = lbtest.canonical({"alg": alg, "kid": lbtest.kid_of(cert), "typ": "checkpoint"})
    pay_b = lbtest.canonical({"origin": "lianban-demo", "size": 3, "root": bytes.fromhex(root_hex),
                              "t_ms": 1767225600000})
    tbs = lbtest.msgpack.packb(["lianban/1", prot_b, pay_b], use_bin_type=True)
    sig = key.sign(tbs) if alg == "EdDSA" else b"\x30\x06\x02\x01\x01\x02\x01\x01"
    env = lbtest.msgpack.packb([prot_b, pay_b, sig], use_bin_type=True)
    return {"alg": alg, "envelope": lbtest.b64e(env), "certificate": lbtest.b64e(cert_der),
            "expect": "verified" if alg == "EdDSA" else "not-verified"}


class Verifiers(unittest.TestCase):

    def test_console_verifiers_on_the_gateways_proofs(self):
        ck, leaves = P.journal()
        n = min(len(leaves), 12)
        hashes = [lbtest.leaf_hash(x) for x in leaves]
        roots = {str(k): lbtest.merkle_root(hashes[:k]).hex() for k in range(1, len(leaves) + 1)}
        inclusion, consistency = [], []
        for size in range(1, n + 1):
            for seq in range(size):
                st, p = P.request("GET", "/v1/journal/proof/inclusion?seq=%d&size=%d" % (seq, size),
                                  client="auditor-audit1")
                self.assertEqual(st, 200, p)
                inclusion.append({"seq": seq, "size": size, "path": p["path"]})
            for first in range(1, size + 1):
                st, p = P.request("GET", "/v1/journal/proof/consistency?first=%d&second=%d" % (first, size),
                                  client="auditor-audit1")
                self.assertEqual(st, 200, p)
                consistency.append({"first": first, "second": size, "path": p["path"]})
        st, cert = P.request("GET", "/v1/journal/certificate", client="auditor-audit1")
        others = [other_checkpoint("EdDSA", roots["3"]),
                  other_checkpoint("SM2", roots["3"], b64d(cert["certificate"]))]
        cfg = {"other_checkpoints": others, "console": os.path.join(SRCDIR, "console"), "leaves": [lbtest.b64e(x) for x in leaves],
               "roots": roots, "inclusion": inclusion, "consistency": consistency,
               "checkpoint": {"envelope": ck["envelope"], "size": ck["size"]},
               "certificate": cert["certificate"]}
        tmp = tempfile.mkdtemp(prefix="lianban-verify-")
        try:
            path = lbtest.write_json(tmp, "verify.json", cfg)
            r = subprocess.run([NODE, os.path.join(SRCDIR, "tests", "console_verify.mjs"), path],
                               capture_output=True, text=True, timeout=120)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(out["problems"], [])
        self.assertEqual(out["checked"], len(leaves) + len(inclusion) + len(consistency) + 1 + len(others))
        self.assertGreater(out["caught"], len(inclusion) + len(consistency))


if __name__ == "__main__":
    unittest.main()
