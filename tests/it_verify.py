"""Integration: verification answers (POST /v1/verifications).  A school
enrollment asked as predicates (household district, property in the school
zone, vaccination doses, age on the first school day) is answered by sealed
yes/no attestations whose receipts verify offline (lianctl seal verify and the
Python outsider) and whose journal records carry no field value; a predicate
the policy does not allow is refused and journaled; consent must cover the
predicates' items; malformed predicates are bad requests; a token is used
once; the citizen's access report shows the verify records."""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import b64d  # noqa: E402

with open(os.path.join(lbtest.SRCDIR, "adapters", "data", "families.json")) as _f:
    FAMILIES = json.load(_f)["families"]
OUTSIDER = os.path.join(lbtest.SRCDIR, "tests", "verify_seal_outsider.py")
BUNDLE = "school_enrollment"


def family(name):
    return next(f for f in FAMILIES if f["family"] == name)


def member(fam, role):
    return next(m for m in fam["members"] if m["role"] == role)


CHEN = family("chen-shanghai")
CHILD = member(CHEN, "child")
FATHER = member(CHEN, "father")
DISTRICT = CHEN["household"]["number"][:6]          # 310104, Xuhui
ZONE = CHEN["property"]["school_zone"]


def pred(item, field, op, value):
    return {"item": item, "field": field, "op": op, "value": value}


# The child's questions: registered in the district, vaccinated, six years
# old on 31 August; true, true, true, and one false (another district).
CHILD_PREDS = [
    pred("household_register", "district", "in", [DISTRICT, "310105"]),
    pred("household_register", "district", "eq", "110105"),
    pred("vaccination_record", "dose_count", "ge", 3),
    pred("birth_medical_certificate", "birth_date", "age_at_least",
         {"years": 6, "on": "2026-08-31"}),
]
# The father's: his flat lies in the school zone (true), in another (false).
FATHER_PREDS = [
    pred("property_certificate", "school_zone", "eq", ZONE),
    pred("property_certificate", "school_zone", "in", ["南山区粤海学区"]),
]
CHILD_ITEMS = ["household_register", "vaccination_record", "birth_medical_certificate"]


class Verifications(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.P = lbtest.Platform()
        cls.tmp = tempfile.mkdtemp(prefix="lianban-verify-")

    @classmethod
    def tearDownClass(cls):
        cls.P.close()
        subprocess.run(["rm", "-rf", cls.tmp], check=False)

    def token(self, sub, items, act=None, **kw):
        if act is not None:
            kw.update(act=act, rel="guardian")
        return self.P.issue(sub, items, azp="school", bundle=BUNDLE, **kw)

    def verify(self, groups, accept="application/json"):
        """groups: [(subject, predicates, token)]."""
        reqs = [{"subject": s, "predicates": p, "consent": t} for s, p, t in groups]
        return self.P.request("POST", "/v1/verifications",
                              {"bundle": BUNDLE, "requests": reqs},
                              client="consumer-school", accept=accept)

    def records_of(self, seqs):
        """The journal's leaves at seqs, as bytes and decoded."""
        _, leaves = self.P.journal()
        return [(leaves[s], msgpack.unpackb(leaves[s], raw=False)) for s in seqs]

    def assert_no_values(self, raw):
        """No value of the underlying records, nor of the predicates."""
        for v in (DISTRICT, ZONE, CHEN["household"]["address"], CHEN["property"]["address"],
                  CHILD["birth_date"], CHILD["birth_date"].replace("-", ""), "2026-08-31",
                  CHILD["name"], FATHER["name"]):
            self.assertNotIn(v.encode(), raw, v)

    def test_01_school_enrollment_sealed_yes_no(self):
        st, body = self.verify([
            (CHILD["id"], CHILD_PREDS, self.token(CHILD["id"], CHILD_ITEMS, act=FATHER["id"])),
            (FATHER["id"], FATHER_PREDS, self.token(FATHER["id"], ["property_certificate"]))])
        self.assertEqual(st, 200, body)
        res = body["results"]
        self.assertEqual([r["status"] for r in res], ["ok"] * 6, res)
        self.assertEqual([r["result"] for r in res], [True, False, True, True, True, False])
        for r, p in zip(res, CHILD_PREDS + FATHER_PREDS):
            self.assertEqual(r["item"], p["item"])
            self.assertEqual(r["predicate"], {k: p[k] for k in ("field", "op", "value")})
            att = r["attestation"]
            self.assertEqual(set(att), {"type", "item", "predicate", "result", "holder",
                                        "issuer", "iat"})
            self.assertEqual(att["type"], "attestation")
            self.assertEqual(att["result"], r["result"])
            self.assertEqual(att["holder"], {"id": r["subject"]})
            self.assertNotIn("document", r)
            # The sealed bytes are the canonical attestation and release no value.
            raw = b64d(r["attestation_bytes"])
            self.assertEqual(lbtest.canonical(att), raw)
            for v in (CHEN["household"]["address"], CHEN["property"]["address"],
                      CHILD["name"], FATHER["name"], CHILD["birth_date"]):
                self.assertNotIn(v.encode(), raw)
            lbtest.verify_seal(r["seal"], raw, os.path.join(self.P.pki, "seal-root.pem"))
        self.assertEqual(res[0]["attestation"]["issuer"], {"dept": "psb"})
        self.assertEqual(res[4]["attestation"]["issuer"], {"dept": "mnr"})
        # One query per record asked about, however many predicates it answers.
        stats = self.P.sim_stats()["by_dept"]
        self.assertEqual(stats.get("psb"), 1, stats)

        # Offline: lianctl seal verify and the Python outsider.
        answer = os.path.join(self.tmp, "verification.json")
        with open(answer, "w") as f:
            json.dump(body, f)
        out = subprocess.run([lbtest.LIANCTL, "seal", "verify", answer, "--certs", self.P.pki],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout.count(": seal ok"), 6, out.stdout)
        self.assertIn("[attestation: false]", out.stdout)
        self.assertIn("attestation digest", out.stdout)
        out = subprocess.run([sys.executable, OUTSIDER, answer,
                              os.path.join(self.P.pki, "seal-root.pem")],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout.count("seal ok"), 6, out.stdout)
        # A flipped answer no longer matches its seal, for either verifier.
        forged = json.loads(json.dumps(body))
        att = forged["results"][1]["attestation"]
        att["result"] = True
        forged["results"][1]["attestation_bytes"] = lbtest.b64e(lbtest.canonical(att))
        with open(answer, "w") as f:
            json.dump(forged, f)
        out = subprocess.run([lbtest.LIANCTL, "seal", "verify", answer, "--certs", self.P.pki],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("SEAL INVALID", out.stdout)
        out = subprocess.run([sys.executable, OUTSIDER, answer,
                              os.path.join(self.P.pki, "seal-root.pem")],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 1, out.stdout)
        self.assertIn("SEAL INVALID", out.stdout)

        # The journal: one "verify" record per predicate, its field and op only.
        recs = self.records_of([r["journal_seq"] for r in res])
        for (raw, rec), r, p in zip(recs, res, CHILD_PREDS + FATHER_PREDS):
            self.assertEqual(rec["kind"], "verify")
            self.assertEqual(rec["predicate"], {"field": p["field"], "op": p["op"]})
            self.assertEqual(rec["code"], "ok")
            self.assertEqual(rec["item"], p["item"])
            self.assertEqual(rec["doc"], hashlib.sha256(b64d(r["attestation_bytes"])).digest())
            self.assertEqual(rec["bundle"], BUNDLE)
            self.assertEqual(rec["consumer"], "school")
            self.assert_no_values(raw)
        # The auditor's query answers the same records, without values either.
        st, q = self.P.request("GET", "/v1/journal/records?subject=%s&limit=50" % CHILD["id"],
                               client="auditor-audit1")
        self.assertEqual(st, 200, q)
        verify = [x for x in q["records"] if x["record"]["kind"] == "verify"]
        self.assertEqual(len(verify), 4, q)
        for x in verify:
            self.assert_no_values(b64d(x["leaf"]))
            self.assert_no_values(json.dumps(x["record"], ensure_ascii=False).encode())

        # The citizen's access report names each predicate's field and op.
        report_tok = self.P.issue(FATHER["id"], ["access_report"], azp="citizen",
                                  bundle="access_report")
        st, rep = self.P.request("GET", "/v1/subjects/me/accesses", client="consumer-citizen",
                                 headers={"Lianban-Consent": report_tok})
        self.assertEqual(st, 200, rep)
        mine = [e for e in rep["accesses"] if e.get("kind") == "verify"]
        self.assertEqual(sorted((e["item"], e["predicate"]["op"]) for e in mine),
                         [("property_certificate", "eq"), ("property_certificate", "in")], rep)
        self.assertTrue(all(e["predicate"]["field"] == "school_zone" for e in mine))
        self.assertNotIn(ZONE, json.dumps(rep, ensure_ascii=False))

    def test_02_msgpack_answer(self):
        st, body = self.verify([(CHILD["id"], CHILD_PREDS[:1],
                                 self.token(CHILD["id"], ["household_register"],
                                            act=FATHER["id"]))],
                               accept="application/msgpack")
        self.assertEqual(st, 200, body)
        r = body["results"][0]
        self.assertTrue(r["result"])
        self.assertEqual(msgpack.unpackb(r["attestation_bytes"], raw=False), r["attestation"])

    def test_03_predicate_not_allowed_is_refused_and_journaled(self):
        """A field the policy does not let anyone verify (the address), and an
        operator it does not allow on a verifiable field (ne on district)."""
        preds = [pred("household_register", "address", "eq", "上海市"),
                 pred("household_register", "district", "ne", "310105")]
        st, body = self.verify([(CHILD["id"], preds,
                                 self.token(CHILD["id"], ["household_register"],
                                            act=FATHER["id"]))])
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "predicate_not_allowed")
        self.assertEqual([r["status"] for r in body["results"]],
                         ["predicate_not_allowed"] * 2)
        self.assertNotIn("result", body["results"][0])
        recs = self.records_of([r["journal_seq"] for r in body["results"]])
        self.assertEqual([rec["code"] for _, rec in recs], ["predicate_not_allowed"] * 2)
        self.assertEqual([rec["decision"] for _, rec in recs], ["deny"] * 2)
        self.assertEqual([rec["predicate"] for _, rec in recs],
                         [{"field": "address", "op": "eq"}, {"field": "district", "op": "ne"}])
        for raw, _ in recs:
            self.assertNotIn("上海市".encode(), raw)
            self.assertNotIn(b"310105", raw)

    def test_04_allowed_and_refused_predicates_in_one_request(self):
        preds = [pred("household_register", "district", "eq", DISTRICT),
                 pred("household_register", "father_id", "eq", FATHER["id"])]
        st, body = self.verify([(CHILD["id"], preds,
                                 self.token(CHILD["id"], ["household_register"],
                                            act=FATHER["id"]))])
        self.assertEqual(st, 200, body)
        self.assertEqual([(r["status"], r.get("result")) for r in body["results"]],
                         [("ok", True), ("predicate_not_allowed", None)])

    def test_05_consent_must_cover_the_predicates_items(self):
        st, body = self.verify([(CHILD["id"], CHILD_PREDS,
                                 self.token(CHILD["id"], ["household_register"],
                                            act=FATHER["id"]))])
        self.assertEqual(st, 403, body)
        self.assertEqual(body["error"]["code"], "consent_item_not_covered")
        rec = self.records_of([body["results"][0]["journal_seq"]])[0][1]
        self.assertEqual((rec["kind"], rec["code"]), ("deny", "consent_item_not_covered"))

    def test_06_malformed_predicates_are_bad_requests(self):
        tok = self.token(CHILD["id"], ["household_register"], act=FATHER["id"])
        bad = [
            None,
            [],
            [pred("household_register", "district", "like", "31%")],
            [pred("household_register", "district", "in", [])],
            [pred("household_register", "district", "in", list(range(65)))],
            [pred("household_register", "district", "ge", "2026-02-30")],
            [pred("household_register", "district", "ge", "soon")],
            [pred("household_register", "birth_date", "age_at_least", {"years": 6})],
            [pred("household_register", "birth_date", "age_at_least",
                  {"years": -1, "on": "2026-08-31"})],
            [pred("household_register", "district", "eq", {"x": 1})],
            [pred("household_register", "district", "eq", "x" * 300)],
            [dict(pred("household_register", "district", "eq", "1"), extra=1)],
            [{"item": "household_register", "field": "district", "op": "eq"}],
            [pred("", "district", "eq", "1")],
            [pred("household_register", "district", "eq", "1")] * 33,
        ]
        before = self.P.journal()[0]["size"]
        for preds in bad:
            req = {"subject": CHILD["id"], "consent": tok}
            if preds is not None:
                req["predicates"] = preds
            st, body = self.P.request("POST", "/v1/verifications",
                                      {"bundle": BUNDLE, "requests": [req]},
                                      client="consumer-school")
            self.assertEqual(st, 400, (preds, body))
            self.assertEqual(body["error"]["code"], "bad_request", body)
        # An exchange's "items" is no verification either.
        st, body = self.P.request("POST", "/v1/verifications", {"bundle": BUNDLE, "requests": [
            {"subject": CHILD["id"], "items": ["household_register"], "consent": tok}]},
            client="consumer-school")
        self.assertEqual((st, body["error"]["code"]), (400, "bad_request"))
        # Refused before anything happened: the token is still unused.
        st, body = self.verify([(CHILD["id"], CHILD_PREDS[:1], tok)])
        self.assertEqual(st, 200, body)
        self.assertGreater(self.P.journal()[0]["size"], before)

    def test_07_type_mismatch_fails_the_predicate(self):
        """dose_count is an integer: comparing it with a date names the field,
        not its value."""
        preds = [pred("vaccination_record", "dose_count", "ge", "2020-01-01"),
                 pred("vaccination_record", "dose_count", "ge", 4)]
        st, body = self.verify([(CHILD["id"], preds,
                                 self.token(CHILD["id"], ["vaccination_record"],
                                            act=FATHER["id"]))])
        self.assertEqual(st, 200, body)
        r0, r1 = body["results"]
        self.assertEqual(r0["status"], "bad_request", r0)
        self.assertIn("dose_count", r0["message"])
        self.assertEqual((r1["status"], r1["result"]), ("ok", False))

    def test_08_replayed_token_is_refused(self):
        tok = self.token(CHILD["id"], ["household_register"], act=FATHER["id"])
        st, body = self.verify([(CHILD["id"], CHILD_PREDS[:1], tok)])
        self.assertEqual(st, 200, body)
        st, body = self.verify([(CHILD["id"], CHILD_PREDS[:1], tok)])
        self.assertEqual(st, 409, body)
        self.assertEqual(body["error"]["code"], "consent_replayed")

    def test_09_consumer_role_only(self):
        st, body = self.P.request("POST", "/v1/verifications",
                                  {"bundle": BUNDLE, "requests": []},
                                  client="auditor-audit1")
        self.assertEqual((st, body["error"]["code"]), (403, "forbidden_role"))

    def test_10_lianctl_fetch_predicates(self):
        tok = self.token(CHILD["id"], ["household_register"], act=FATHER["id"])
        out_file = os.path.join(self.tmp, "ctl.json")
        out = self.P.ctl("fetch", "--bundle", BUNDLE, "--subject", CHILD["id"],
                         "--predicates", json.dumps(CHILD_PREDS[:2]), "--consent", tok,
                         "--out", out_file, "--quiet", client="consumer-school")
        self.assertEqual(out.returncode, 0, out.stderr)
        with open(out_file) as f:
            ans = json.load(f)
        self.assertEqual([r["result"] for r in ans["results"]], [True, False])
        out = subprocess.run([lbtest.LIANCTL, "seal", "verify", out_file, "--certs",
                              self.P.pki], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        out = self.P.ctl("fetch", "--bundle", BUNDLE, "--subject", CHILD["id"],
                         "--predicates", "[{", "--consent", tok, client="consumer-school")
        self.assertEqual(out.returncode, 2, out.stderr)

    def test_11_ops_summary_counts_verifications(self):
        """This platform served only verifications: their verify records are the
        departments' fetches in the operations view."""
        st, body = self.P.request("GET", "/v1/ops/summary?hours=1", client="admin-ops")
        self.assertEqual(st, 200, body)
        depts = {d["dept"]: d for d in body["departments"]}
        self.assertGreaterEqual(depts.get("mnr", {}).get("items", 0), 2, body["departments"])
        self.assertGreaterEqual(depts.get("psb", {}).get("items", 0), 2, body["departments"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
