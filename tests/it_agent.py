"""Integration: authorised agents (docs/consent.md, "Legal representatives
and agents").

A relative registered with civil affairs as the agent of a disabled person
applies for the disability_assistance bundle: accepted, journaled with rel
agent and a record of the delegation read, and the principal's access
report names the agent (masked id and name) while no journal leaf holds an
ID number.  Refused with agent_unverified, journaled, for a delegation that
expired, was revoked, does not cover the bundle, or does not name the
applicant, for a bundle that takes no agent, and for the same delegation
once the civil-affairs record says it has expired."""

import copy
import json
import os
import sys
import tempfile
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import MOTHER  # noqa: E402

# adapters/data/families.json "delegations": Liu Yang's agent is his wife
# Huang Li (active); Zhou Ting's registration with Yang Yong expired at the
# end of 2025; Zhang Min's with Chen Zhiqiang was revoked.
LIU_YANG, HUANG_LI = "440305199305182716", "440305199408261863"
ZHOU_TING, YANG_YONG = "510107198806303622", "510107198502114590"
ZHANG_MIN, CHEN_ZHIQIANG = "310104198911092488", "310104198707223153"
ITEMS = ("household_register", "disability_certificate")
BUNDLE = "disability_assistance"
CLIENT = "consumer-assist"
P = None


def setUpModule():
    global P
    P = lbtest.Platform()
    # A second bundle that takes agents, which none of the delegations covers.
    with open(os.path.join(lbtest.SRCDIR, "policies", BUNDLE + ".json")) as f:
        pol = json.load(f)
    pol["bundle"] = "t_assist_other"
    st, body = P.request("PUT", "/v1/policies/t_assist_other", pol, client="admin-ops")
    assert st == 200, body


def tearDownModule():
    if P is not None:
        P.close()


def token(sub, act, items=ITEMS, bundle=BUNDLE, rel="agent", pki=None):
    return lbtest.issue_independent(pki or P.pki, sub, items, azp="assist", bundle=bundle,
                                    act=act, rel=rel)


def records(platform=None):
    ck, leaves = (platform or P).journal()
    return [msgpack.unpackb(x, raw=False) for x in leaves], leaves


class Agent(unittest.TestCase):

    def refused(self, sub, act, why, bundle=BUNDLE, platform=None, proof=True):
        p = platform or P
        size = p.journal()[0]["size"]
        before = p.sim_stats()
        st, body = p.exchange(sub, ITEMS, token(sub, act, bundle=bundle, pki=p.pki),
                              bundle=bundle, client=CLIENT)
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "agent_unverified", body)
        self.assertIn(why, body["error"]["message"])
        after = p.sim_stats()
        # At most the delegation record was read; no item was fetched.
        self.assertEqual(after["total"], before["total"] + (1 if proof else 0))
        self.assertEqual(after["by_dept"]["cdpf"], before["by_dept"]["cdpf"])
        new = [r for r in records(p)[0][size:] if r["kind"] != "audit-read"]
        self.assertFalse(any(r.get("decision") == "allow" for r in new), new)
        (deny,) = [r for r in new if r["kind"] == "deny"]
        self.assertEqual((deny["code"], deny["rel"]), ("agent_unverified", "agent"))
        if proof:
            self.assertEqual((deny["dept"], deny["item"]), ("mca", "assisted_application"))
            (pr,) = [r for r in new if r.get("op") == "agent_proof"]
            self.assertEqual((pr["decision"], pr["code"]), ("deny", "agent_unverified"))
        return body

    def test_01_registered_agent_is_accepted_and_shown(self):
        size = P.journal()[0]["size"]
        st, body = P.exchange(LIU_YANG, ITEMS, token(LIU_YANG, HUANG_LI), bundle=BUNDLE,
                              client=CLIENT)
        self.assertEqual(st, 200, body)
        res = {r["item"]: r for r in body["results"]}
        self.assertTrue(all(r["status"] == "ok" for r in res.values()), body)
        cert = res["disability_certificate"]["document"]
        self.assertEqual(cert["holder"]["id"], LIU_YANG)
        self.assertEqual((cert["fields"]["category"], cert["fields"]["grade"]), ("physical", 2))
        recs, leaves = records()
        new = recs[size:]
        items = [r for r in new if r["kind"] == "item" and "op" not in r]
        self.assertEqual(sorted(r["item"] for r in items), sorted(ITEMS))
        self.assertTrue(all(r["rel"] == "agent" and r["decision"] == "allow" for r in items))
        (pr,) = [r for r in new if r.get("op") == "agent_proof"]
        self.assertEqual((pr["dept"], pr["item"], pr["decision"]),
                         ("mca", "assisted_application", "allow"))
        # The principal's access report names the agent, masked.
        rtok = P.issue(LIU_YANG, ["access_report"], azp="citizen", bundle="access_report")
        st, rep = P.request("GET", "/v1/subjects/me/accesses", client="consumer-citizen",
                            headers={"Lianban-Consent": rtok})
        self.assertEqual(st, 200, rep)
        acted = [a for a in rep["accesses"] if a.get("rel") == "agent"]
        self.assertEqual(len(acted), 3, rep)     # two items and the delegation read
        for a in acted:
            self.assertEqual(a["agent"], {"id": "440305********1863", "name": "黄丽"}, a)
        # The journal itself holds no ID number, raw or masked.
        blob = b"".join(leaves)
        for needle in (HUANG_LI, LIU_YANG, "440305********1863", "黄丽"):
            self.assertNotIn(needle.encode(), blob)

    def test_02_expired_delegation(self):
        self.refused(ZHOU_TING, YANG_YONG, "expired on 2025-12-31")

    def test_03_revoked_delegation(self):
        self.refused(ZHANG_MIN, CHEN_ZHIQIANG, "not in force")

    def test_04_bundle_not_covered(self):
        self.refused(LIU_YANG, HUANG_LI, "does not cover bundle", bundle="t_assist_other")

    def test_05_delegation_names_someone_else(self):
        self.refused(LIU_YANG, MOTHER, "does not name the applicant")

    def test_06_bundle_without_agents(self):
        before = P.sim_stats()["total"]
        tok = lbtest.issue_independent(P.pki, LIU_YANG, ["household_register"],
                                       azp="retirement", bundle="retirement", act=HUANG_LI,
                                       rel="agent")
        st, body = P.exchange(LIU_YANG, ["household_register"], tok, bundle="retirement",
                              client="consumer-retirement")
        self.assertEqual((st, body["error"]["code"]), (403, "agent_unverified"), body)
        self.assertEqual(P.sim_stats()["total"], before)

    def test_07_accepted_then_refused_once_the_delegation_expired(self):
        """The same agent, after civil affairs' record shows the delegation
        ended yesterday: refused."""
        with open(os.path.join(lbtest.SRCDIR, "adapters", "data", "families.json")) as f:
            data = json.load(f)
        later = copy.deepcopy(data)
        for d in later["delegations"]:
            if d["principal"]["id"] == LIU_YANG:
                d["valid_from"], d["valid_until"] = "2024-01-01", "2025-01-01"
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "families.json")
            with open(path, "w") as f:
                json.dump(later, f, ensure_ascii=False)
            q = lbtest.Platform(sim_args=["--data", path])
            try:
                self.refused(LIU_YANG, HUANG_LI, "expired on 2025-01-01", platform=q)
            finally:
                q.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
