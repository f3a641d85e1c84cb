"""Integration: consent and policy enforcement through the real lianband and
department simulator.  One test per error code an exchange can end in (the
codes tests/it_exchange.py already covers are left to it), each checking the
HTTP status, the code, a deny record in the journal and that no department
was contacted; tokens made without lianban code (Python for ES256 and EdDSA,
the openssl CLI for SM2); guardian proofs; revocation; rate limits; and the
jti replay store under concurrent use of one token."""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import FATHER, MOTHER, NEWBORN, b64d, b64e  # noqa: E402

ITEM = "birth_medical_certificate"
STRANGER = "110105198807070011"
P = None
POLDIR = None

# Test bundles next to the shipped policies (consumer "newborn" throughout).
TEST_POLICIES = {
    "t_guardian": {
        "guardian": {"allowed": True, "proofs": [
            {"item": ITEM, "fields": ["mother_id", "father_id"]}]},
        "items": [{"item": ITEM, "dept": "nhc", "fields": ["gender", "birth_date"]}]},
    "t_noproof": {
        "guardian": {"allowed": True},
        "items": [{"item": ITEM, "dept": "nhc", "fields": ["gender"]}]},
    "t_noguardian": {
        "guardian": {"allowed": False},
        "items": [{"item": ITEM, "dept": "nhc", "fields": ["gender"]}]},
    "t_rate": {
        "rate_limit": {"per_second": 1, "burst": 1},
        "items": [{"item": ITEM, "dept": "nhc", "fields": ["gender"]}]},
    "t_replay": {
        "items": [{"item": ITEM, "dept": "nhc", "fields": ["gender"]}]},
    "t_noadapter": {
        "items": [{"item": "land_title", "dept": "nodept", "fields": ["area"]}]},
}


def setUpModule():
    global P, POLDIR
    POLDIR = tempfile.mkdtemp(prefix="lianban-it-policies-")
    for f in glob.glob(os.path.join(lbtest.SRCDIR, "policies", "*.json")):
        shutil.copy(f, POLDIR)
    for bundle, extra in TEST_POLICIES.items():
        pol = {"bundle": bundle, "name": bundle, "consumers": ["newborn"],
               "assurance": {"amr": ["face"], "min_liveness": 900, "min_match": 900}}
        pol.update(extra)
        with open(os.path.join(POLDIR, bundle + ".json"), "w") as f:
            json.dump(pol, f)
    P = lbtest.Platform(gw_args=["--policies", POLDIR])


def tearDownModule():
    try:
        if P is not None:
            P.close()
    finally:
        shutil.rmtree(POLDIR, ignore_errors=True)


def records():
    ck, leaves = P.journal()
    return [msgpack.unpackb(x, raw=False) for x in leaves]


def token(sub=NEWBORN, items=(ITEM,), **kw):
    return lbtest.issue_independent(P.pki, sub, items, **kw)


def sign_token(key, kid, alg, payload):
    prot_b = lbtest.canonical({"alg": alg, "kid": kid, "typ": "consent"})
    pay_b = lbtest.canonical(payload)
    tbs = msgpack.packb(["lianban/1", prot_b, pay_b], use_bin_type=True)
    return prot_b, pay_b, tbs


def claims(sub=NEWBORN, items=(ITEM,), iss="faceauth", bundle="newborn"):
    now = int(time.time())
    return {"iss": iss, "aud": "lianban-demo", "sub": sub, "act": sub, "rel": "self",
            "azp": "newborn", "bundle": bundle, "items": list(items), "amr": ["face"],
            "liveness": 990, "match": 985, "iat": now, "exp": now + 300,
            "jti": os.urandom(16)}


def sm2_token(payload):
    """An SM2 consent token signed by the openssl CLI (SM3, distid per docs/contract.md §4)."""
    cert = os.path.join(P.pki, "trust", "consent", "faceauth-sm2.pem")
    key = os.path.join(P.pki, "authorities", "faceauth-sm2.key")
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-pubkey"],
                         capture_output=True, check=True).stdout
    spki = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                          capture_output=True, check=True).stdout
    prot_b, pay_b, tbs = sign_token(None, hashlib.sha256(spki).digest(), "SM2", payload)
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "tbs"), "wb") as f:
            f.write(tbs)
        subprocess.run(["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-digest",
                        "sm3", "-pkeyopt", "distid:1234567812345678",
                        "-in", os.path.join(d, "tbs"), "-out", os.path.join(d, "sig")],
                       check=True, capture_output=True)
        with open(os.path.join(d, "sig"), "rb") as f:
            sig = f.read()
    return b64e(msgpack.packb([prot_b, pay_b, sig], use_bin_type=True))


def consent_jti(tok):
    prot, payload, tbs, sig = lbtest.open_envelope(b64d(tok), "consent")
    return payload["jti"]


def exchange(sub, items, tok, bundle="newborn", client="consumer-newborn"):
    req = {"subject": sub, "items": list(items)}
    if tok is not None:
        req["consent"] = tok
    return P.request("POST", "/v1/exchanges", {"bundle": bundle, "requests": [req]},
                     client=client)


class Consent(unittest.TestCase):

    def refused(self, tok, code, status, bundle="newborn", items=(ITEM,),
                client="consumer-newborn", sub=NEWBORN, dept_calls=0, whole=False):
        """Asserts the refusal, its deny record and (by default) no department call.
        whole: the request is refused before any consent is read, with one deny
        record that names no subject."""
        size = P.journal()[0]["size"]
        before = P.sim_stats()["total"]
        st, body = exchange(sub, items, tok, bundle=bundle, client=client)
        self.assertEqual(st, status, body)
        self.assertEqual(body["error"]["code"], code, body)
        self.assertTrue(body["error"]["message"])
        self.assertTrue(all(r["status"] == code for r in body["results"]), body)
        if dept_calls is not None:
            self.assertEqual(P.sim_stats()["total"], before + dept_calls,
                             "department calls differ from %d" % dept_calls)
        new = [r for r in records()[size:] if r["kind"] != "audit-read"]
        if whole:
            (r,) = new
            self.assertEqual((r["kind"], r["decision"], r["code"], r["bundle"]),
                             ("deny", "deny", code, bundle), r)
            self.assertNotIn("subject", r)
            self.assertTrue(all(x["journal_seq"] == r["seq"] for x in body["results"]))
            return body
        self.assertTrue(any(r["decision"] == "deny" and r["code"] == code and
                            r["kind"] in ("deny", "item") for r in new), new)
        self.assertFalse(any(r.get("decision") == "allow" for r in new), new)
        self.assertTrue(any(r["kind"] == "exchange" and r["code"] == code for r in new), new)
        return body

    def served(self, tok, bundle="newborn", sub=NEWBORN):
        st, body = exchange(sub, [ITEM], tok, bundle=bundle)
        self.assertEqual(st, 200, body)
        self.assertEqual(body["results"][0]["status"], "ok", body)
        return body

    # Tokens from independent implementations of the contract ---------------

    def test_01_es256_token_from_python(self):
        self.served(token(authority="faceauth"))

    def test_02_eddsa_token_from_python(self):
        self.served(token(authority="faceauth-ed"))

    def test_03_sm2_token_from_openssl_cli(self):
        self.served(sm2_token(claims(iss="faceauth-sm2")))

    # One test per error code --------------------------------------------------

    def test_10_consent_missing(self):
        self.refused(None, "consent_missing", 401)

    def test_11_consent_malformed(self):
        self.refused(b64e(b"\x93\xc4\x01a"), "consent_malformed", 400)
        self.refused(token(rel="cousin"), "consent_malformed", 400)

    def test_12_consent_bad_signature(self):
        prot_b, pay_b, sig = msgpack.unpackb(b64d(token()), raw=False)
        other = claims()
        forged = msgpack.packb([prot_b, lbtest.canonical(other), sig], use_bin_type=True)
        self.refused(b64e(forged), "consent_bad_signature", 403)

    def test_13_consent_untrusted_issuer(self):
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        prot_b, pay_b, tbs = sign_token(key, hashlib.sha256(spki).digest(), "ES256", claims())
        sig = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
        tok = b64e(msgpack.packb([prot_b, pay_b, sig], use_bin_type=True))
        self.refused(tok, "consent_untrusted_issuer", 403)

    def test_14_consent_wrong_audience(self):
        self.refused(token(aud="another-gateway"), "consent_wrong_audience", 403)

    def test_15_consent_not_yet_valid(self):
        now = int(time.time())
        self.refused(token(now=now + 300), "consent_not_yet_valid", 403)

    def test_16_consent_wrong_bundle(self):
        self.refused(token(bundle="school_enrollment"), "consent_wrong_bundle", 403)

    def test_17_consent_item_not_covered(self):
        self.refused(token(items=["household_register"]), "consent_item_not_covered", 403)

    def test_18_item_not_in_policy(self):
        self.refused(token(items=[ITEM, "land_title"]), "item_not_in_policy", 403,
                     items=(ITEM, "land_title"))

    def test_19_unknown_bundle(self):
        self.refused(token(bundle="no_such_bundle"), "unknown_bundle", 404,
                     bundle="no_such_bundle", whole=True)

    def test_20_assurance_too_low(self):
        self.refused(token(liveness=500), "assurance_too_low", 403)
        self.refused(token(match=100), "assurance_too_low", 403)
        self.refused(token(amr=["pwd"]), "assurance_too_low", 403)

    def test_21_forbidden_role(self):
        self.refused(token(azp="school"), "forbidden_role", 403, client="consumer-school",
                     whole=True)

    def test_22_no_adapter(self):
        self.refused(token(items=["land_title"], bundle="t_noadapter"), "no_adapter", 502,
                     bundle="t_noadapter", items=("land_title",))

    def test_23_consent_replayed(self):
        tok = token()
        self.served(tok)
        self.refused(tok, "consent_replayed", 409)

    # Guardian ------------------------------------------------------------------

    def guardian(self, act, bundle="t_guardian"):
        return token(act=act, rel="guardian", bundle=bundle)

    def test_30_guardian_mother_and_father_are_proven(self):
        for parent in (MOTHER, FATHER):
            before = P.sim_stats()["by_dept"]["nhc"]
            body = self.served(self.guardian(parent), bundle="t_guardian")
            # The proof is the requested certificate: fetched once, not twice.
            self.assertEqual(P.sim_stats()["by_dept"]["nhc"], before + 1)
            doc = body["results"][0]["document"]
            self.assertEqual(doc["holder"]["id"], NEWBORN)
            # Only the released fields leave, even though the proof read others.
            self.assertEqual(sorted(doc["fields"]), ["birth_date", "gender"], doc)
            rec = records()[body["results"][0]["journal_seq"]]
            self.assertEqual(rec["rel"], "guardian")
            self.assertEqual(rec["decision"], "allow")

    def test_31_guardian_stranger_is_refused_after_the_proof_only(self):
        before = P.sim_stats()["by_dept"]
        body = self.refused(self.guardian(STRANGER), "guardian_unverified", 403,
                            bundle="t_guardian", dept_calls=1)
        after = P.sim_stats()["by_dept"]
        self.assertEqual(after["nhc"], before["nhc"] + 1, "only the proof was fetched")
        self.assertIn("guardian", body["error"]["message"])
        # The deny record names the record that was consulted for the proof.
        rec = records()[body["results"][0]["journal_seq"]]
        self.assertEqual((rec["kind"], rec["code"]), ("deny", "guardian_unverified"))
        self.assertEqual((rec["dept"], rec["item"]), ("nhc", ITEM))
        self.assertEqual(rec["rel"], "guardian")

    def test_36_token_of_another_subject(self):
        """The consumer presented the mother's token for the baby: refused as
        the consumer's mistake (403), no department asked."""
        body = self.refused(token(sub=MOTHER), "subject_mismatch", 403)
        self.assertIn("another subject", body["error"]["message"])

    def test_34_guardian_proof_read_is_journaled(self):
        """The proof record is a read of the child's data even when it is not
        a requested item: it gets its own journal record."""
        vac = "vaccination_record"
        tok = token(items=(vac,), act=MOTHER, rel="guardian", bundle="newborn")
        size = P.journal()[0]["size"]
        st, body = exchange(NEWBORN, [vac], tok, bundle="newborn")
        self.assertEqual(st, 200, body)
        self.assertEqual(body["results"][0]["status"], "ok", body)
        new = [r for r in records()[size:] if r["kind"] == "item"]
        proofs = [r for r in new if r.get("op") == "guardian_proof"]
        self.assertEqual([(r["dept"], r["item"], r["decision"], r["code"]) for r in proofs],
                         [("nhc", ITEM, "allow", "ok")], new)
        self.assertEqual(proofs[0]["rel"], "guardian")
        self.assertEqual([(r["dept"], r["item"]) for r in new if "op" not in r],
                         [("cdc", vac)], new)
        self.assertEqual(records()[body["results"][0]["journal_seq"]]["item"], vac)

    def test_35_guardian_consent_is_for_minors_only(self):
        """The mother is an adult: nobody consents for her as guardian, and no
        department is asked to prove it."""
        tok = token(sub=MOTHER, act=FATHER, rel="guardian", bundle="t_guardian")
        body = self.refused(tok, "guardian_unverified", 403, bundle="t_guardian",
                            sub=MOTHER, dept_calls=0)
        self.assertIn("minor", body["error"]["message"])

    def test_33_guardian_under_the_shipped_newborn_policy(self):
        body = self.served(self.guardian(MOTHER, "newborn"))
        self.assertEqual(body["results"][0]["document"]["fields"]["mother_id"], MOTHER)
        self.refused(self.guardian(STRANGER, "newborn"), "guardian_unverified", 403,
                     dept_calls=None)

    def test_32_guardian_without_proofs_or_not_allowed(self):
        self.refused(self.guardian(MOTHER, "t_noproof"), "guardian_unverified", 403,
                     bundle="t_noproof")
        self.refused(self.guardian(MOTHER, "t_noguardian"), "guardian_unverified", 403,
                     bundle="t_noguardian")

    # Revocation ----------------------------------------------------------------

    def test_40_admin_revokes_a_token(self):
        tok = token()
        out = P.ctl("consent", "revoke", "--jti", consent_jti(tok).hex(), client="admin-ops")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(json.loads(out.stdout)["revoked"], "jti")
        seq = json.loads(out.stdout)["journal_seq"]
        rec = records()[seq]
        self.assertEqual((rec["kind"], rec["op"], rec["principal"]),
                         ("revoke", "jti", "admin:ops"))
        self.refused(tok, "consent_revoked", 403)
        # Still revoked: the refusal did not consume the jti either way.
        self.refused(tok, "consent_revoked", 403)

    def test_41_authority_revokes_a_citizens_consent(self):
        # A bundle of its own, so the revocation cannot touch the other tests.
        bundle = "t_noguardian"
        old = token(authority="faceauth-ed", bundle=bundle)
        out = P.ctl("consent", "revoke", "--subject", NEWBORN, "--bundle", bundle,
                    "--authority", os.path.join(P.pki, "authorities", "faceauth-ed.key"),
                    "--authority-cert", os.path.join(P.pki, "trust", "consent",
                                                     "faceauth-ed.pem"))
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        rec = records()[json.loads(out.stdout)["journal_seq"]]
        self.assertEqual((rec["kind"], rec["op"], rec["principal"]),
                         ("revoke", "subject", "authority:faceauth-ed"))
        self.assertEqual(rec["bundle"], bundle)
        self.assertNotIn(NEWBORN.encode(), lbtest.canonical(rec))
        self.refused(old, "consent_revoked", 403, bundle=bundle)
        # Consent given again after the revocation is honoured.
        self.served(token(now=int(time.time()) + 5, bundle=bundle), bundle=bundle)

    def test_43_a_replayed_revocation_cannot_reach_newer_consent(self):
        """A signed revocation covers tokens issued up to its own iat; relaying
        the same envelope later revokes nothing given since."""
        bundle = "t_replay"
        now = int(time.time())
        with open(os.path.join(P.pki, "authorities", "faceauth.key"), "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        with open(os.path.join(P.pki, "trust", "consent", "faceauth.pem"), "rb") as f:
            kid = lbtest.kid_of(x509.load_pem_x509_certificate(f.read()))
        prot_b = lbtest.canonical({"alg": "ES256", "kid": kid, "typ": "revocation"})
        pay_b = lbtest.canonical({"subject": NEWBORN, "bundle": bundle, "iat": now - 20})
        tbs = msgpack.packb(["lianban/1", prot_b, pay_b], use_bin_type=True)
        env = b64e(msgpack.packb([prot_b, pay_b, key.sign(tbs, ec.ECDSA(hashes.SHA256()))],
                                 use_bin_type=True))
        before = token(bundle=bundle, now=now - 30)
        st, body = P.request("POST", "/v1/revocations", {"revocation": env})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["revoked_at"], now - 20)
        self.refused(before, "consent_revoked", 403, bundle=bundle)
        # Consent given after the authority signed is honoured, and stays so
        # when anyone relays the old envelope again.
        after = token(bundle=bundle, now=now - 10)
        st, body = P.request("POST", "/v1/revocations", {"revocation": env},
                             client="department-psb")
        self.assertEqual(st, 200, body)
        self.served(after, bundle=bundle)

    def test_42_revocation_needs_admin_or_an_authority_signature(self):
        st, body = P.request("POST", "/v1/revocations", {"jti": b64e(os.urandom(16))})
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "forbidden_role")
        st, body = P.request("POST", "/v1/revocations", {"jti": "short"},
                             client="admin-ops")
        self.assertEqual(st, 400, body)
        # A revocation signed by a key the gateway does not trust.
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(serialization.Encoding.DER,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)
        prot_b = lbtest.canonical({"alg": "ES256", "kid": hashlib.sha256(spki).digest(),
                                   "typ": "revocation"})
        pay_b = lbtest.canonical({"jti": os.urandom(16), "iat": int(time.time())})
        tbs = msgpack.packb(["lianban/1", prot_b, pay_b], use_bin_type=True)
        env = msgpack.packb([prot_b, pay_b, key.sign(tbs, ec.ECDSA(hashes.SHA256()))],
                            use_bin_type=True)
        st, body = P.request("POST", "/v1/revocations", {"revocation": b64e(env)})
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "consent_untrusted_issuer")

    # Rate limit ----------------------------------------------------------------

    def test_50_rate_limited(self):
        """One request per second, burst one: within a few quick requests one is
        refused before any consent work or department contact."""
        for _ in range(20):
            size = P.journal()[0]["size"]
            before = P.sim_stats()["total"]
            st, body = exchange(NEWBORN, [ITEM], token(bundle="t_rate"), bundle="t_rate")
            if st != 429:
                continue
            self.assertEqual(body["error"]["code"], "rate_limited", body)
            self.assertEqual(P.sim_stats()["total"], before)
            new = [r for r in records()[size:] if r["kind"] != "audit-read"]
            self.assertTrue(any(r["kind"] == "deny" and r["code"] == "rate_limited"
                                for r in new), new)
            self.assertFalse(any(r.get("decision") == "allow" for r in new), new)
            return
        self.fail("no request was rate limited")

    # Replay store --------------------------------------------------------------

    def test_60_one_token_many_connections_exactly_one_wins(self):
        results = P.concurrent_exchanges(NEWBORN, [ITEM], [token()] * 20)
        statuses = sorted(st for st, _ in results)
        self.assertEqual(statuses, [200] + [409] * 19, results)
        for st, body in results:
            if st == 409:
                self.assertEqual(body["error"]["code"], "consent_replayed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
