"""Integration: electronic seals (docs/contract.md §6) through the real lianband.
Concurrent exchanges share one batch signature, SM2 and EdDSA seals verify
end to end (lianctl, and an outsider with hashlib/openssl only), the
outsider commands of docs/seals.md run verbatim, and `lianctl seal verify`
names each check it made and fails clearly on every kind of tampering."""

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64d, b64e  # noqa: E402

ITEM = "birth_medical_certificate"
OUTSIDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "verify_seal_outsider.py")
DELAY_MS = 500
DOC = os.path.join(lbtest.SRCDIR, "docs", "seals.md")
P = None
SM2 = None
ED = None
TMP = None
ANSWERS = {}	# one sealed answer per platform, made once
LONE = None	# the answer of a lone exchange (a batch of one)
SHARED = None	# one answer of a batch shared by concurrent exchanges


class SealPlatform(lbtest.Platform):
    """The demo platform with nhc-birth sealed by another seal of nhc."""

    def __init__(self, seal):
        self.seal = seal
        super().__init__()

    def write_specs(self):
        super().write_specs()
        path = os.path.join(self.specs, "nhc-birth.json")
        with open(path) as f:
            spec = json.load(f)
        spec["seal"] = self.seal
        lbtest.write_json(self.specs, "nhc-birth.json", spec)


def setUpModule():
    global P, SM2, ED, TMP
    TMP = tempfile.mkdtemp(prefix="lianban-seal-")
    # A slow department keeps concurrent exchanges in flight together, and a
    # long window lets their claims wait for each other.
    P = lbtest.Platform(sim_args=["--delay", "nhc=%d" % DELAY_MS],
                        gw_args=["--seal-window", "1000", "--verbose"])
    SM2 = SealPlatform("nhc-sm2")
    ED = SealPlatform("nhc-ed")


def tearDownModule():
    for p in (P, SM2, ED):
        if p is not None:
            p.close()
    shutil.rmtree(TMP, ignore_errors=True)


def lianctl_verify(platform, path, *extra):
    return platform.ctl("seal", "verify", path, *extra)


def outsider_verify(path, root):
    return subprocess.run([sys.executable, OUTSIDER, path, root], capture_output=True,
                          text=True, timeout=120)


def answer_of(platform):
    """One answer with a sealed document from platform (made once)."""
    if platform not in ANSWERS:
        status, body = platform.exchange(NEWBORN, [ITEM], platform.issue(NEWBORN, [ITEM]))
        assert status == 200, body
        assert body["results"][0]["status"] == "ok", body
        ANSWERS[platform] = body
    return ANSWERS[platform]


def assert_checks_listed(test, out, hashname, alg, index, size):
    """lianctl seal verify names every check it made."""
    test.assertIn("document digest  %s of document_bytes equals the claim's doc" % hashname,
                  out)
    test.assertIn("Merkle path      leaf %d of %d (%s) leads to the batch root"
                  % (index, size, hashname), out)
    test.assertIn("batch signature  %s, verified with the seal certificate" % alg, out)
    test.assertIn("certificate      chains to the seal root "
                  "/O=lianban demo/CN=lianban demo seal root", out)
    test.assertRegex(out, r"validity         certificate valid at iat \d+ ")


class Batching(unittest.TestCase):

    def test_01_lone_exchange_does_not_wait_for_the_window(self):
        token = P.issue(NEWBORN, [ITEM])
        status, body = P.exchange(NEWBORN, [ITEM], token)
        self.assertEqual(status, 200, body)
        (r,) = body["results"]
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["seal"]["index"], 0)
        self.assertEqual(r["seal"]["path"], [])
        # The sealer says why it cut each batch: with no other exchange on its
        # way, the lone claim must not have waited for the 1000 ms window.
        with open(P.gw_log, errors="replace") as f:
            cuts = re.findall(r"sealer: batch of (\d+) claims for seal nhc \(([^)]*)\)", f.read())
        self.assertEqual(cuts, [("1", "no exchange is on its way")],
                         "an idle gateway waited for the window")
        lbtest.verify_seal(r["seal"], b64d(r["document_bytes"]),
                           os.path.join(P.pki, "seal-root.pem"))
        global LONE
        LONE = body

    def test_02_concurrent_exchanges_share_one_batch(self):
        n = 5
        answers = P.concurrent_exchanges(NEWBORN, [ITEM],
                                         [P.issue(NEWBORN, [ITEM]) for _ in range(n)])
        batches, indices, exchanges = set(), set(), set()
        for status, body in answers:
            self.assertEqual(status, 200, body)
            (r,) = body["results"]
            self.assertEqual(r["status"], "ok", r)
            doc = b64d(r["document_bytes"])
            claim, payload = lbtest.verify_seal(r["seal"], doc,
                                                os.path.join(P.pki, "seal-root.pem"))
            self.assertEqual(claim["exch"], b64d(body["exchange"]))
            self.assertEqual(payload["size"], n)
            batches.add(r["seal"]["batch"])
            indices.add(r["seal"]["index"])
            exchanges.add(body["exchange"])
            out = lianctl_verify(P, lbtest.write_json(TMP, "concurrent.json", body))
            self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
            self.assertIn("batch leaf %d of %d" % (r["seal"]["index"], n), out.stdout)
            assert_checks_listed(self, out.stdout, "SHA-256", "ES256", r["seal"]["index"], n)
        self.assertEqual(len(batches), 1, "the exchanges did not share one batch envelope")
        self.assertEqual(indices, set(range(n)))
        self.assertEqual(len(exchanges), n)
        global SHARED
        SHARED = answers[0][1]


class SM2Seals(unittest.TestCase):

    def test_sm2_seal_verifies_with_lianctl_and_openssl(self):
        body = answer_of(SM2)
        (r,) = body["results"]
        path = lbtest.write_json(TMP, "sm2.json", body)
        out = lianctl_verify(SM2, path)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("seal nhc-sm2, SM2", out.stdout)
        # SM3, not SHA-256, for the document digest and the Merkle hashing.
        assert_checks_listed(self, out.stdout, "SM3", "SM2", 0, 1)
        # Independently: SM3 through `openssl dgst -sm3`, the signature through
        # `openssl dgst -sm3 -verify -sigopt distid:...`.
        doc = b64d(r["document_bytes"])
        sm3 = subprocess.run(["openssl", "dgst", "-sm3", "-binary"], input=doc,
                             capture_output=True, check=True).stdout
        claim = msgpack.unpackb(b64d(r["seal"]["claim"]), raw=False)
        self.assertEqual(claim["doc"], sm3)
        self.assertEqual(claim["seal"], "nhc-sm2")
        prot = msgpack.unpackb(msgpack.unpackb(b64d(r["seal"]["batch"]))[0], raw=False)
        self.assertEqual(prot["alg"], "SM2")
        out = outsider_verify(path, os.path.join(SM2.pki, "seal-root.pem"))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("seal ok: issuer nhc, seal nhc-sm2, SM2", out.stdout)
        # An SM2 receipt checked with SHA-256 (the ES256 rules) does not verify.
        leaf256 = lbtest.leaf_hash(b64d(r["seal"]["claim"]))
        payload = msgpack.unpackb(msgpack.unpackb(b64d(r["seal"]["batch"]))[1], raw=False)
        self.assertNotEqual(leaf256, payload["root"])


class EdDSASeals(unittest.TestCase):

    def test_eddsa_seal_verifies_with_lianctl_and_outsider(self):
        body = answer_of(ED)
        (r,) = body["results"]
        doc = b64d(r["document_bytes"])
        prot = msgpack.unpackb(msgpack.unpackb(b64d(r["seal"]["batch"]))[0], raw=False)
        self.assertEqual(prot["alg"], "EdDSA")
        self.assertEqual(len(msgpack.unpackb(b64d(r["seal"]["batch"]))[2]), 64)
        # Independently, with python3-cryptography's Ed25519.
        claim, payload = lbtest.verify_seal(r["seal"], doc, os.path.join(ED.pki, "seal-root.pem"))
        self.assertEqual(claim["seal"], "nhc-ed")
        self.assertEqual(claim["doc"], hashlib.sha256(doc).digest())
        path = lbtest.write_json(TMP, "ed.json", body)
        out = lianctl_verify(ED, path)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("seal nhc-ed, EdDSA", out.stdout)
        assert_checks_listed(self, out.stdout, "SHA-256", "EdDSA", 0, 1)
        out = outsider_verify(path, os.path.join(ED.pki, "seal-root.pem"))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("seal ok: issuer nhc, seal nhc-ed, EdDSA", out.stdout)

    def test_eddsa_signature_byte_changed(self):
        body = copy.deepcopy(answer_of(ED))
        r = body["results"][0]
        r["seal"]["batch"] = b64e(flip_last(b64d(r["seal"]["batch"])))
        path = lbtest.write_json(TMP, "ed-bad.json", body)
        out = lianctl_verify(ED, path)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("batch signature does not verify", out.stdout)
        out = outsider_verify(path, os.path.join(ED.pki, "seal-root.pem"))
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)


def documented_commands():
    """The shell block of docs/seals.md that follows the outsider-commands mark."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    i = text.index("<!-- outsider-commands")
    start = text.index("```sh\n", i) + len("```sh\n")
    return text[start:text.index("```", start)]


class DocumentedCommands(unittest.TestCase):
    """docs/seals.md's step-by-step outsider commands, run verbatim."""

    def run_doc(self, answer, root):
        d = tempfile.mkdtemp(dir=TMP)
        shutil.copy(OUTSIDER, os.path.join(d, "verify_seal_outsider.py"))
        shutil.copy(root, os.path.join(d, "seal-root.pem"))
        lbtest.write_json(d, "answer.json", answer)
        # The documented block calls "python3": the one running this test.
        bindir = os.path.join(d, "bin")
        os.mkdir(bindir)
        os.symlink(sys.executable, os.path.join(bindir, "python3"))
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ["PATH"])
        return subprocess.run(["bash", "-euo", "pipefail", "-c", documented_commands()],
                              cwd=d, env=env, capture_output=True, text=True, timeout=120)

    def test_es256_sm2_eddsa_verify(self):
        for platform, alg, verified in ((P, "ES256", "Verified OK"),
                                        (SM2, "SM2", "Verified OK"),
                                        (ED, "EdDSA", "Signature Verified Successfully")):
            with self.subTest(alg=alg):
                answer = SHARED if platform is P else answer_of(platform)
                out = self.run_doc(answer, os.path.join(platform.pki, "seal-root.pem"))
                self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
                self.assertIn("document digest and Merkle path ok", out.stdout)
                self.assertIn(", %s, leaf " % alg, out.stdout)
                self.assertIn(verified, out.stdout)
                self.assertIn("seal.pem: OK", out.stdout)

    def test_tampering_stops_the_commands(self):
        body = copy.deepcopy(SHARED)
        r = body["results"][0]
        r["seal"]["batch"] = b64e(flip_last(b64d(r["seal"]["batch"])))
        out = self.run_doc(body, os.path.join(P.pki, "seal-root.pem"))
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertIn("Verification failure", out.stdout + out.stderr)
        self.assertNotIn("seal.pem: OK", out.stdout)

        body = copy.deepcopy(SHARED)
        r = body["results"][0]
        r["document_bytes"] = b64e(flip_in_string(b64d(r["document_bytes"])))
        out = self.run_doc(body, os.path.join(P.pki, "seal-root.pem"))
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("document digest does not match the claim", out.stdout)

    def test_foreign_root_stops_the_commands(self):
        d = os.path.join(TMP, "doc-foreign-root")
        os.makedirs(d, exist_ok=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "root.key", "-out", "root.pem", "-days", "30",
                "-subj", "/O=elsewhere/CN=another seal root", cwd=d)
        out = self.run_doc(SHARED, os.path.join(d, "root.pem"))
        self.assertNotEqual(out.returncode, 0, out.stdout)
        self.assertNotIn("seal.pem: OK", out.stdout)


class Outsider(unittest.TestCase):
    """The documented outsider verification (docs/seals.md) on ES256 seals."""

    def test_outsider_verifies_es256_batch(self):
        out = outsider_verify(lbtest.write_json(TMP, "shared.json", SHARED),
                              os.path.join(P.pki, "seal-root.pem"))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"seal ok: issuer nhc, seal nhc, ES256, leaf \d of 5")

    def test_outsider_rejects_a_changed_document(self):
        body = copy.deepcopy(SHARED)
        r = body["results"][0]
        r["document_bytes"] = b64e(flip_in_string(b64d(r["document_bytes"])))
        out = outsider_verify(lbtest.write_json(TMP, "outsider-bad.json", body),
                              os.path.join(P.pki, "seal-root.pem"))
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("document digest does not match the claim", out.stdout)


def flip_in_string(doc):
    """The document bytes with one letter of a string value changed (still canonical)."""
    i = doc.index("male".encode())
    return doc[:i] + b"f" + doc[i + 1:]


def flip_last(b):
    return b[:-1] + bytes([b[-1] ^ 0x01])


def resign(batch, keyfile, certfile):
    """The batch envelope re-signed (ES256) by another key, its certificate in x5c."""
    prot_b, pay_b, _ = msgpack.unpackb(batch, raw=False)
    with open(keyfile, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(certfile, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_bytes(serialization.Encoding.DER)
    prot = lbtest.canonical({"alg": "ES256", "kid": lbtest.kid_of(cert), "typ": "seal-batch",
                             "x5c": [der]})
    tbs = msgpack.packb(["lianban/1", prot, pay_b], use_bin_type=True)
    return msgpack.packb([prot, pay_b, key.sign(tbs, ec.ECDSA(hashes.SHA256()))],
                         use_bin_type=True)


def openssl(*args, cwd=None):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=cwd)


class Tampering(unittest.TestCase):
    """Each change makes `lianctl seal verify` fail and say what is wrong."""

    def check_fails(self, body, why, *extra):
        out = lianctl_verify(P, lbtest.write_json(TMP, "tampered.json", body), *extra)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        self.assertIn("SEAL INVALID", out.stdout)
        self.assertIn(why, out.stdout)
        self.assertIn("failed verification", out.stderr)

    def tampered(self):
        body = copy.deepcopy(SHARED)
        return body, body["results"][0]

    def test_untouched_verifies(self):
        out = lianctl_verify(P, lbtest.write_json(TMP, "untouched.json", SHARED))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)

    def test_document_byte(self):
        body, r = self.tampered()
        doc = flip_in_string(b64d(r["document_bytes"]))
        r["document_bytes"] = b64e(doc)
        r["document"] = msgpack.unpackb(doc, raw=False)
        self.check_fails(body, "document digest does not match the claim")

    def test_document_object_only(self):
        body, r = self.tampered()
        r["document"]["holder"]["name"] += "x"
        self.check_fails(body, "the document differs from document_bytes")

    def test_claim_byte(self):
        body, r = self.tampered()
        claim = b64d(r["seal"]["claim"])
        i = claim.index(b64d(body["exchange"]))	# a byte of the exchange id
        r["seal"]["claim"] = b64e(claim[:i] + bytes([claim[i] ^ 1]) + claim[i + 1:])
        self.check_fails(body, "Merkle path does not lead to the batch root")

    def test_path_byte(self):
        body, r = self.tampered()
        self.assertTrue(r["seal"]["path"])
        r["seal"]["path"][0] = b64e(flip_last(b64d(r["seal"]["path"][0])))
        self.check_fails(body, "Merkle path does not lead to the batch root")

    def test_signature_byte(self):
        body, r = self.tampered()
        r["seal"]["batch"] = b64e(flip_last(b64d(r["seal"]["batch"])))
        self.check_fails(body, "batch signature does not verify")

    def test_wrong_root(self):
        # A genuine batch envelope, of another batch: its root is not this claim's.
        body, r = self.tampered()
        r["seal"]["batch"] = LONE["results"][0]["seal"]["batch"]
        self.check_fails(body, "Merkle path does not lead to the batch root")

    def test_foreign_seal_root(self):
        # Verified against a seal root that did not issue the seal certificate.
        d = os.path.join(TMP, "foreign-root")
        os.makedirs(d, exist_ok=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "root.key", "-out", "root.pem", "-days", "30",
                "-subj", "/O=elsewhere/CN=another seal root", cwd=d)
        body, _ = self.tampered()
        self.check_fails(body, "does not chain to a trusted seal root",
                         "--seal-root", os.path.join(d, "root.pem"))

    def test_foreign_certificate(self):
        # A seal certificate for "nhc" made by someone else's CA signs the batch.
        d = os.path.join(TMP, "foreign")
        os.makedirs(d, exist_ok=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
                "-subj", "/O=elsewhere/CN=forged seal root", cwd=d)
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "seal.key", "-out", "seal.csr", "-subj", "/O=elsewhere/CN=nhc", cwd=d)
        openssl("x509", "-req", "-in", "seal.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "30", "-out", "seal.pem", cwd=d)
        body, r = self.tampered()
        r["seal"]["batch"] = b64e(resign(b64d(r["seal"]["batch"]), os.path.join(d, "seal.key"),
                                         os.path.join(d, "seal.pem")))
        self.check_fails(body, "does not chain to a trusted seal root")

    def test_expired_certificate(self):
        # A seal certificate from the real seal root, but expired before iat.
        d = os.path.join(TMP, "expired")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "ca.cnf"), "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\n"
                    "serial = serial\ndefault_md = sha256\npolicy = p\n"
                    "[p]\ncommonName = supplied\norganizationName = optional\n")
        open(os.path.join(d, "index.txt"), "w").close()
        with open(os.path.join(d, "serial"), "w") as f:
            f.write("01\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", "seal.key", "-out", "seal.csr", "-subj", "/O=lianban demo/CN=nhc",
                cwd=d)
        openssl("ca", "-batch", "-config", "ca.cnf", "-cert",
                os.path.join(P.pki, "seal-root.pem"), "-keyfile",
                os.path.join(P.pki, "seal-root.key"), "-in", "seal.csr", "-out", "seal.pem",
                "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-notext",
                cwd=d)
        body, r = self.tampered()
        r["seal"]["batch"] = b64e(resign(b64d(r["seal"]["batch"]), os.path.join(d, "seal.key"),
                                         os.path.join(d, "seal.pem")))
        self.check_fails(body, "certificate has expired")


if __name__ == "__main__":
    unittest.main(verbosity=2)
