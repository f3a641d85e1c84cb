"""Integration: enterprises act through their legal representative
(docs/consent.md, "Legal representatives and agents").

The enterprise_opening bundle for a company whose legal representative
consents: every item of the samr, tax, hrss and hpf simulators served,
translated from its format (XML in a default namespace, fixed-width
GB18030 with a four-byte character, JSON, GB18030 CSV), sealed so that an
outsider verifies the seal, and journaled with rel legal_rep.  Someone who
is not the legal representative is refused with agent_unverified after the
one query for the business licence, and that refusal is journaled.  Codes
that are not unified social credit codes, or that do not go with rel
legal_rep, are malformed consent."""

import os
import sys
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import FATHER, MOTHER, b64d  # noqa: E402

# adapters/data/families.json: Beijing Yuntu, legal representative Wang Wei
# (family 1's father); Shanghai Jixiang (吉 written U+20BB7), Zhang Min.
YUNTU = "91110105MA01C3R5K2"
JIXIANG = "91310104MA1FR8TQ2Q"
ZHANG_MIN = "310104198911092488"
ITEMS = ("business_license", "tax_registration", "employer_social_security",
         "housing_fund_account")
CLIENT = "consumer-enterprise"
P = None


def setUpModule():
    global P
    P = lbtest.Platform()


def tearDownModule():
    if P is not None:
        P.close()


def token(sub, act, items=ITEMS, bundle="enterprise_opening", rel="legal_rep", **kw):
    return lbtest.issue_independent(P.pki, sub, items, azp="enterprise", bundle=bundle,
                                    act=act, rel=rel, **kw)


def exchange(sub, tok, items=ITEMS, bundle="enterprise_opening"):
    return P.exchange(sub, items, tok, bundle=bundle, client=CLIENT)


def records():
    ck, leaves = P.journal()
    return [msgpack.unpackb(x, raw=False) for x in leaves]


class Enterprise(unittest.TestCase):

    def test_01_legal_rep_opens_the_business(self):
        size = P.journal()[0]["size"]
        before = P.sim_stats()["by_dept"]
        st, body = exchange(YUNTU, token(YUNTU, FATHER))
        self.assertEqual(st, 200, body)
        res = {r["item"]: r for r in body["results"]}
        self.assertEqual(sorted(res), sorted(ITEMS))
        for item, r in res.items():
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["document"]["holder"]["id"], YUNTU, r)
            doc_bytes = b64d(r["document_bytes"])
            claim, _ = lbtest.verify_seal(r["seal"], doc_bytes,
                                          os.path.join(P.pki, "seal-root.pem"))
            self.assertEqual(claim["item"], item)
        lic = res["business_license"]["document"]
        self.assertEqual(lic["issuer"]["dept"], "samr")
        self.assertEqual(lic["fields"]["name"], "北京云图信息技术有限公司")
        self.assertEqual(lic["fields"]["status"], "active")
        self.assertEqual(lic["fields"]["legal_rep_name"], "王伟")
        # The proof field is read by the gateway but not released by the policy.
        self.assertNotIn("legal_rep_id", lic["fields"])
        self.assertEqual(res["tax_registration"]["document"]["fields"]["taxpayer_type"],
                         "general")
        self.assertEqual(res["employer_social_security"]["document"]["fields"]["employees"],
                         23)
        self.assertEqual(res["housing_fund_account"]["document"]["fields"]
                         ["deposit_rate_pct"], 12)
        # The licence proved the relation and is a requested item: asked once.
        after = P.sim_stats()["by_dept"]
        for d in ("samr", "tax", "hrss", "hpf"):
            self.assertEqual(after[d], before[d] + 1, d)
        new = records()[size:]
        items = [r for r in new if r["kind"] == "item"]
        self.assertEqual(sorted(r["item"] for r in items), sorted(ITEMS), new)
        for r in items:
            self.assertEqual((r["rel"], r["decision"], r["code"]), ("legal_rep", "allow", "ok"))
            self.assertNotEqual(r["actor"], r["subject"])

    def test_02_four_byte_gb18030_name_survives_fixed_width(self):
        st, body = exchange(JIXIANG, token(JIXIANG, ZHANG_MIN))
        self.assertEqual(st, 200, body)
        res = {r["item"]: r for r in body["results"]}
        self.assertTrue(all(r["status"] == "ok" for r in res.values()), body)
        name = "上海\U00020BB7祥餐饮管理有限公司"
        self.assertEqual(res["tax_registration"]["document"]["fields"]["name"], name)
        self.assertEqual(res["tax_registration"]["document"]["holder"]["name"], name)
        self.assertEqual(res["housing_fund_account"]["document"]["holder"]["name"], name)
        self.assertEqual(res["tax_registration"]["document"]["fields"]["taxpayer_type"],
                         "small_scale")

    def test_03_not_the_legal_rep_is_refused(self):
        size = P.journal()[0]["size"]
        before = P.sim_stats()
        st, body = exchange(YUNTU, token(YUNTU, MOTHER))
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "agent_unverified", body)
        self.assertIn("legal representative", body["error"]["message"])
        self.assertTrue(all(r["status"] == "agent_unverified" for r in body["results"]))
        after = P.sim_stats()
        # Only the business licence was read, for the proof.
        self.assertEqual(after["total"], before["total"] + 1)
        self.assertEqual(after["by_dept"]["samr"], before["by_dept"]["samr"] + 1)
        new = [r for r in records()[size:] if r["kind"] != "audit-read"]
        self.assertFalse(any(r.get("decision") == "allow" for r in new), new)
        proof = [r for r in new if r.get("op") == "legal_rep_proof"]
        self.assertEqual([(r["dept"], r["item"], r["decision"], r["code"]) for r in proof],
                         [("samr", "business_license", "deny", "agent_unverified")], new)
        (deny,) = [r for r in new if r["kind"] == "deny"]
        self.assertEqual((deny["code"], deny["rel"], deny["dept"], deny["item"]),
                         ("agent_unverified", "legal_rep", "samr", "business_license"))

    def test_04_proof_outside_the_items_is_its_own_record(self):
        """enterprise_closing does not release the licence: it is read as
        the proof only, journaled as such, and not returned."""
        items = ("tax_registration", "housing_fund_account")
        size = P.journal()[0]["size"]
        st, body = exchange(YUNTU, token(YUNTU, FATHER, items=items,
                                         bundle="enterprise_closing"),
                            items=items, bundle="enterprise_closing")
        self.assertEqual(st, 200, body)
        self.assertEqual(sorted(r["item"] for r in body["results"]), sorted(items))
        self.assertEqual(body["results"][0]["document"]["fields"].get("arrears"), "0.00")
        new = records()[size:]
        proof = [r for r in new if r.get("op") == "legal_rep_proof"]
        self.assertEqual([(r["dept"], r["item"], r["decision"]) for r in proof],
                         [("samr", "business_license", "allow")], new)

    def test_05_invalid_or_mismatched_codes_are_malformed(self):
        before = P.sim_stats()["total"]
        bad = YUNTU[:-1] + "3"     # wrong check character
        for sub, act, rel in ((bad, FATHER, "legal_rep"),
                              (FATHER, FATHER, "legal_rep"),     # a person
                              (YUNTU, YUNTU, "self"),            # an enterprise by itself
                              (YUNTU, FATHER, "guardian")):
            size = P.journal()[0]["size"]
            st, body = exchange(sub, token(sub, act, rel=rel))
            self.assertEqual(st, 400, body)
            self.assertEqual(body["error"]["code"], "consent_malformed", (sub, rel, body))
            new = [r for r in records()[size:] if r["kind"] == "deny"]
            self.assertEqual([r["code"] for r in new], ["consent_malformed"])
        self.assertEqual(P.sim_stats()["total"], before, "no department was asked")

    def test_06_other_consumers_and_bundles(self):
        st, body = P.exchange(YUNTU, ITEMS, token(YUNTU, FATHER), bundle="enterprise_opening",
                              client="consumer-newborn")
        self.assertEqual((st, body["error"]["code"]), (403, "forbidden_role"), body)
        # A bundle without a legal_rep section takes no legal representative.
        before = P.sim_stats()["total"]
        tok = lbtest.issue_independent(P.pki, YUNTU, ["resident_id_card"], azp="retirement",
                                       bundle="retirement", act=FATHER, rel="legal_rep")
        st, body = P.exchange(YUNTU, ["resident_id_card"], tok, bundle="retirement",
                              client="consumer-retirement")
        self.assertEqual((st, body["error"]["code"]), (403, "agent_unverified"), body)
        self.assertIn("does not accept", body["error"]["message"])
        self.assertEqual(P.sim_stats()["total"], before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
