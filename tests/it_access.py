"""Integration: the citizen's access report, GET /v1/subjects/me/accesses
(docs/contract.md §8): a self consent token for the bundle access_report names
the citizen; the report lists exactly the journal records about that
citizen, newest first, with their decisions; refusals carry the section 8
codes; the read itself is journaled; lianctl access report prints it."""

import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import FATHER, MOTHER, NEWBORN, b64d, b64e  # noqa: E402

ITEM = "birth_medical_certificate"
PATH = "/v1/subjects/me/accesses"
CITIZEN = "consumer-citizen"
P = None
EXCH = {}       # subject -> exchange ids of its exchanges


def setUpModule():
    global P
    P = lbtest.Platform()
    # A granted exchange for the newborn ...
    st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
    assert st == 200 and body["results"][0]["status"] == "ok", body
    EXCH.setdefault(NEWBORN, []).append(body["exchange"])
    # ... and one denied for the father: the face match is too weak.
    st, body = P.exchange(FATHER, [ITEM], P.issue(FATHER, [ITEM], match=500))
    assert st == 403 and body["error"]["code"] == "assurance_too_low", body
    EXCH.setdefault(FATHER, []).append(body["exchange"])


def tearDownModule():
    if P is not None:
        P.close()


def token(sub, **kw):
    kw.setdefault("azp", "citizen")
    kw.setdefault("bundle", "access_report")
    items = kw.pop("items", ["access_report"])
    return P.issue(sub, items, **kw)


def report(tok, query="", client=CITIZEN):
    headers = {} if tok is None else {"Lianban-Consent": tok}
    return P.request("GET", PATH + query, client=client, headers=headers)


def auditor_records(sub):
    """Every journal record about sub, as the auditor's records query sees it."""
    out, after = [], None
    while True:
        q = "/v1/journal/records?limit=1000&subject=" + sub
        if after is not None:
            q += "&after=%d" % after
        st, body = P.request("GET", q, client="auditor-audit1")
        assert st == 200, body
        out += body["records"]
        if body["next"] is None:
            return out
        after = body["next"]


class AccessReport(unittest.TestCase):

    def assertRefused(self, st, body, status, code):
        self.assertEqual(st, status, body)
        self.assertEqual(body["error"]["code"], code, body)

    def test_granted_subject_sees_exactly_own_records(self):
        st, body = report(token(NEWBORN))
        self.assertEqual(st, 200, body)
        acc = body["accesses"]
        self.assertIsNone(body["next"])
        seqs = [a["seq"] for a in acc]
        self.assertEqual(seqs, sorted(seqs, reverse=True), "newest first")
        items = [a for a in acc if a.get("kind") == "item"]
        self.assertEqual(len(items), 1, acc)
        a = items[0]
        self.assertEqual((a["consumer"], a["bundle"], a["item"], a["dept"], a["decision"],
                          a["code"]), ("newborn", "newborn", ITEM, "nhc", "allow", "ok"))
        self.assertIn(a["exchange"], EXCH[NEWBORN])
        self.assertGreater(a["t_ms"], 0)
        # Exactly the newborn's records: the auditor's view of this subject,
        # less the record of this very read (committed before the answer).
        theirs = {r["seq"]: r["record"] for r in auditor_records(NEWBORN)}
        extra = set(theirs) - set(seqs)
        self.assertTrue(set(seqs) <= set(theirs))
        self.assertEqual(len(extra), 1, extra)
        own = theirs[extra.pop()]
        self.assertEqual((own["kind"], own["consumer"], own["bundle"], own["item"],
                          own["decision"]),
                         ("audit-read", "citizen", "access_report", "access_report", "allow"))
        # Nothing of the father appears.
        father = {r["seq"] for r in auditor_records(FATHER)}
        self.assertFalse(father & set(seqs))
        for x in acc:
            self.assertNotIn(x.get("exchange"), EXCH[FATHER])

    def test_denied_subject_sees_the_denial(self):
        st, body = report(token(FATHER))
        self.assertEqual(st, 200, body)
        denies = [a for a in body["accesses"] if a["kind"] == "deny"
                  and a.get("bundle") == "newborn"]
        self.assertEqual(len(denies), 1, body)
        d = denies[0]
        self.assertEqual((d["consumer"], d["decision"], d["code"]),
                         ("newborn", "deny", "assurance_too_low"))
        self.assertEqual(d["exchange"], EXCH[FATHER][0])
        self.assertFalse([a for a in body["accesses"] if a.get("item") == ITEM
                          and a["decision"] == "allow"], body)
        newborn = {r["seq"] for r in auditor_records(NEWBORN)}
        self.assertFalse(newborn & {a["seq"] for a in body["accesses"]})

    def test_msgpack_answer(self):
        st, body = P.request("GET", PATH, client=CITIZEN, accept="application/msgpack",
                             headers={"Lianban-Consent": token(NEWBORN)})
        self.assertEqual(st, 200, body)
        items = [a for a in body["accesses"] if a["kind"] == "item"]
        self.assertEqual(len(items), 1)
        self.assertEqual(b64e(items[0]["exchange"]), EXCH[NEWBORN][0])

    def test_missing_and_malformed_token(self):
        self.assertRefused(*report(None), 401, "consent_missing")
        self.assertRefused(*report("not base64url!"), 400, "consent_malformed")
        self.assertRefused(*report(b64e(b"\x93\xc4\x00\xc4\x00\xc4\x00")), 400,
                           "consent_malformed")

    def test_bad_signature(self):
        raw = bytearray(b64d(token(MOTHER)))
        raw[-5] ^= 0x40
        self.assertRefused(*report(b64e(bytes(raw))), 403, "consent_bad_signature")

    def test_replayed_token(self):
        tok = token(MOTHER)
        st, body = report(tok)
        self.assertEqual(st, 200, body)
        self.assertRefused(*report(tok), 409, "consent_replayed")
        # The refusal is journaled about her, as a denial.
        recs = [r["record"] for r in auditor_records(MOTHER)]
        self.assertTrue([r for r in recs if r["kind"] == "deny" and
                         r["code"] == "consent_replayed" and
                         r.get("bundle") == "access_report"], recs)

    def test_token_for_another_bundle(self):
        self.assertRefused(*report(token(NEWBORN, bundle="newborn")), 403,
                           "consent_wrong_bundle")
        # A token the citizen gave the newborn service is not a report token.
        self.assertRefused(*report(P.issue(NEWBORN, [ITEM])), 403, "consent_wrong_consumer")

    def test_item_and_assurance(self):
        self.assertRefused(*report(token(NEWBORN, items=[ITEM])), 403,
                           "consent_item_not_covered")
        self.assertRefused(*report(token(NEWBORN, liveness=100)), 403, "assurance_too_low")
        self.assertRefused(*report(token(NEWBORN, amr="pwd")), 403, "assurance_too_low")

    def test_revoked_consent(self):
        sub = "110101199001011234"
        tok = token(sub)
        st, body = P.request("POST", "/v1/revocations",
                             {"subject": sub, "bundle": "access_report"}, client="admin-ops")
        self.assertEqual(st, 200, body)
        self.assertRefused(*report(tok), 403, "consent_revoked")

    def test_guardian_token_refused(self):
        st, body = report(token(NEWBORN, rel="guardian", act=MOTHER))
        self.assertRefused(st, body, 403, "guardian_unverified")

    def test_roles(self):
        tok = token(NEWBORN, azp="newborn")
        self.assertRefused(*report(tok, client="consumer-newborn"), 403, "forbidden_role")
        self.assertRefused(*report(token(NEWBORN), client="auditor-audit1"), 403,
                           "forbidden_role")
        st, body = P.request("POST", PATH, {"x": 1}, client=CITIZEN,
                             headers={"Lianban-Consent": token(NEWBORN)})
        self.assertRefused(st, body, 405, "method_not_allowed")
        self.assertRefused(*report(token(NEWBORN), query="?limit=0"), 400, "bad_request")
        self.assertRefused(*report(token(NEWBORN), query="?limit=1001"), 400, "bad_request")
        self.assertRefused(*report(token(NEWBORN), query="?before=x"), 400, "bad_request")
        st, body = P.request("GET", "/v1/subjects/other/accesses", client=CITIZEN)
        self.assertRefused(st, body, 404, "not_found")

    def test_read_is_journaled(self):
        before = {r["seq"] for r in auditor_records(MOTHER)}
        st, body = report(token(MOTHER))
        self.assertEqual(st, 200, body)
        new = [r for r in auditor_records(MOTHER) if r["seq"] not in before]
        reads = [r for r in new if r["record"]["kind"] == "audit-read" and
                 r["record"].get("consumer") == "citizen"]
        self.assertEqual(len(reads), 1, new)
        seq, r = reads[0]["seq"], reads[0]["record"]
        self.assertEqual((r["bundle"], r["item"], r["decision"], r["code"], r["rel"]),
                         ("access_report", "access_report", "allow", "ok", "self"))
        self.assertEqual(len(b64d(r["subject"])), 32)
        self.assertEqual(len(b64d(r["consent"])), 32)
        # The next report shows the previous read, and the auditor's query
        # about her made since (newest first).
        st, body = report(token(MOTHER))
        self.assertEqual(st, 200, body)
        first, second = body["accesses"][:2]
        self.assertEqual((first["kind"], first["item"]), ("audit-read", "records"))
        self.assertNotIn("consumer", first)
        self.assertEqual((second["seq"], second["kind"], second["consumer"]),
                         (seq, "audit-read", "citizen"))

    def test_paging_newest_first(self):
        # Give the newborn a few more records, then walk back two at a time.
        for _ in range(2):
            st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
            self.assertEqual(st, 200, body)
        st, full = report(token(NEWBORN), query="?limit=1000")
        self.assertEqual(st, 200, full)
        want = [a["seq"] for a in full["accesses"]]
        self.assertGreaterEqual(len(want), 4)
        got, before = [], None
        while True:
            q = "?limit=2" + ("" if before is None else "&before=%d" % before)
            st, page = report(token(NEWBORN), query=q)
            self.assertEqual(st, 200, page)
            self.assertLessEqual(len(page["accesses"]), 2)
            # Reads made while paging are newer than the first page's start.
            got += [a["seq"] for a in page["accesses"]
                    if before is not None or a["seq"] <= want[0]]
            if page["next"] is None:
                break
            before = page["next"]
        self.assertEqual(got[-len(want):], want)
        self.assertEqual(got, sorted(got, reverse=True))
        self.assertEqual(len(got), len(set(got)))

    def test_lianctl_table_and_json(self):
        r = P.ctl("access", "report", "--consent", token(NEWBORN), client=CITIZEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertIn("CONSUMER", lines[0])
        self.assertIn("DECISION", lines[0])
        rows = [l for l in lines if ITEM in l]
        self.assertTrue(rows, r.stdout)
        self.assertTrue(all("newborn" in l and "nhc" in l and l.rstrip().endswith("ok")
                            for l in rows), r.stdout)
        self.assertNotIn(FATHER, r.stdout)
        with tempfile.NamedTemporaryFile("w", suffix=".tok") as f:
            f.write(token(FATHER) + "\n")
            f.flush()
            r = P.ctl("--json", "access", "report", "--consent-file", f.name, client=CITIZEN)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        codes = [a["code"] for a in doc["accesses"] if a.get("bundle") == "newborn"]
        self.assertEqual(codes, ["assurance_too_low"])
        # Refusals exit 1 with the gateway's code; usage errors exit 2.
        tok = token(NEWBORN, bundle="newborn")
        r = P.ctl("access", "report", "--consent", tok, client=CITIZEN)
        self.assertEqual(r.returncode, 1)
        self.assertIn("consent_wrong_bundle", r.stderr)
        r = P.ctl("access", "report", client=CITIZEN)
        self.assertEqual(r.returncode, 2)
        r = P.ctl("access", "report", "--consent", "a\r\nX-Evil: 1", client=CITIZEN)
        self.assertEqual(r.returncode, 2)


class RateLimit(unittest.TestCase):

    def test_access_reports_obey_the_policy_rate_limit(self):
        """A report is an exchange with the journal: the access_report policy's
        rate limit holds, refusals are journaled, the token stays unused."""
        poldir = tempfile.mkdtemp(prefix="lianban-it-access-")
        with open(os.path.join(lbtest.SRCDIR, "policies", "access_report.json")) as f:
            pol = json.load(f)
        pol["rate_limit"] = {"per_second": 1, "burst": 1}
        with open(os.path.join(poldir, "access_report.json"), "w") as f:
            json.dump(pol, f)
        q = lbtest.Platform(gw_args=["--policies", poldir])
        try:
            answers = [q.request("GET", PATH, client=CITIZEN, headers={
                "Lianban-Consent": q.issue(MOTHER, ["access_report"], azp="citizen",
                                           bundle="access_report")}) for _ in range(4)]
            codes = [b["error"]["code"] if st != 200 else "ok" for st, b in answers]
            self.assertIn("rate_limited", codes)
            self.assertTrue(all(st == 429 for st, b in answers
                                if st != 200), answers)
            leaves = q.journal()[1]
            recs = [lbtest.msgpack.unpackb(x, raw=False) for x in leaves]
            self.assertTrue(any(r["kind"] == "deny" and r.get("code") == "rate_limited"
                                for r in recs), recs)
        finally:
            q.close()
            shutil.rmtree(poldir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
