"""Integration: the audit console (docs/audit.md) in a real Chromium.

The platform serves the console at /console/; tests/it_console.js drives
Debian's chromium through playwright-core (the version package.json pins)
with the auditor's, the admin's and a citizen app's client certificates, and
reports what the pages showed.  Checked here: the search for a subject just
exchanged finds its records (and the address reloads it); a record's
inclusion proof and checkpoint signature verify in the browser, and a
flipped bit in the proof, the record or the checkpoint shows as failed; the
witness's consistency check fails on a tampered proof; the citizen view
lists what the API's access report lists; the operations view counts the
exchanges made.  Screenshots go to docs/console/ of the build tree.

The browser must start: when it cannot, the test fails (it never skips).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import FATHER, MOTHER, NEWBORN, SRCDIR, BUILDDIR  # noqa: E402

CHROMIUM = os.environ.get("LB_CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node") or "/usr/bin/node"
ITEM = "birth_medical_certificate"
PARENT_ITEMS = ["resident_id_card", "marriage_certificate"]


def node_modules():
    """The folder holding playwright-core: the source tree's (./quickstart
    runs npm ci there), else one this test installs from package-lock.json
    into the build tree."""
    for d in (os.path.join(SRCDIR, "node_modules"), os.path.join(BUILDDIR, "tests", "npm", "node_modules")):
        if os.path.exists(os.path.join(d, "playwright-core", "package.json")):
            return d
    npm = os.path.join(BUILDDIR, "tests", "npm")
    os.makedirs(npm, exist_ok=True)
    for f in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(SRCDIR, f), npm)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=npm, check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    return os.path.join(npm, "node_modules")


P = None
SEEN = None             # what the pages showed (it_console.js)
EXPECT = {}


def setUpModule():
    global P, SEEN
    modules = node_modules()
    P = lbtest.Platform(gw_args=["--console", os.path.join(SRCDIR, "console")])
    try:
        st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
        assert st == 200 and body["results"][0]["status"] == "ok", body
        st, body = P.exchange(MOTHER, PARENT_ITEMS, P.issue(MOTHER, PARENT_ITEMS))
        assert st == 200, body
        st, body = P.exchange(FATHER, [ITEM], P.issue(FATHER, [ITEM], match=500))
        assert st == 403 and body["error"]["code"] == "assurance_too_low", body
        # What the operations view must count: the journal's own records.
        recs = [lbtest.msgpack.unpackb(x, raw=False) for x in P.journal()[1]]
        EXPECT["exchanges"] = sum(r["kind"] == "exchange" for r in recs)
        EXPECT["items"] = sum(r["kind"] == "item" for r in recs)
        EXPECT["denials"] = {}
        for r in recs:
            if r["kind"] == "deny":
                EXPECT["denials"][r["code"]] = EXPECT["denials"].get(r["code"], 0) + 1
        EXPECT["depts"] = {}
        for r in recs:
            if r["kind"] == "item":
                d = EXPECT["depts"].setdefault(r["dept"], {"items": 0, "errors": 0})
                d["items"] += 1
                d["errors"] += r["code"] != "ok"
        tmp = tempfile.mkdtemp(prefix="lianban-console-")
        try:
            cfg = {
                "base": "https://127.0.0.1:%d" % P.port,
                "chromium": CHROMIUM,
                "modules": modules,
                "shots": os.path.join(BUILDDIR, "docs", "console"),
                "subject": NEWBORN,
                "citizen_token": P.issue(NEWBORN, ["access_report"], azp="citizen",
                                         bundle="access_report"),
                "certs": {"auditor": P.client_files("auditor-audit1"),
                          "admin": P.client_files("admin-ops"),
                          "citizen": P.client_files("consumer-citizen")},
            }
            path = lbtest.write_json(tmp, "console.json", cfg)
            r = subprocess.run([NODE, os.path.join(SRCDIR, "tests", "it_console.js"), path],
                               capture_output=True, text=True, timeout=240)
            sys.stderr.write(r.stderr)
            assert r.returncode == 0, "the browser test failed:\n" + r.stderr[-4000:]
            SEEN = json.loads(r.stdout.strip().splitlines()[-1])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        P.close()
        P = None
        raise


def tearDownModule():
    if P is not None:
        P.close()


class Console(unittest.TestCase):

    def test_search_finds_the_subject_and_reloads_from_the_address(self):
        auditor = [r["record"] for r in P.request(
            "GET", "/v1/journal/records?limit=1000&subject=" + NEWBORN, client="auditor-audit1")[1]["records"]]
        exchanged = [r for r in auditor if r["kind"] != "audit-read"]
        shown = [r for r in SEEN["search_rows"] if r["cells"][2] != "audit-read"]
        self.assertEqual([int(r["seq"]) for r in shown], [r["seq"] for r in exchanged])
        item = [r for r in shown if r["cells"][2] == "item"][0]["cells"]
        self.assertEqual(item[3:9], ["newborn", "newborn", ITEM, "nhc", "allow", "ok"])
        self.assertIn("subject=" + NEWBORN, SEEN["search_url"])
        self.assertEqual(SEEN["reload_subject"], NEWBORN)
        self.assertEqual([r["seq"] for r in SEEN["reload_rows"]][:len(shown)],
                         [r["seq"] for r in SEEN["search_rows"]][:len(shown)])

    def test_kind_and_code_filters(self):
        self.assertEqual(len(SEEN["deny_rows"]), 1, SEEN["deny_rows"])
        self.assertEqual(SEEN["deny_rows"][0]["cells"][2], "deny")
        self.assertEqual(SEEN["deny_rows"][0]["cells"][8], "assurance_too_low")

    def test_cursor_paging(self):
        st, body = P.request("GET", "/v1/journal/records?kind=item&limit=1000", client="auditor-audit1")
        items = [str(r["seq"]) for r in body["records"]]
        self.assertGreater(len(items), 2)
        self.assertTrue(SEEN["page1_next"])
        self.assertEqual([r["seq"] for r in SEEN["page1"]], items[:2])
        self.assertEqual([r["seq"] for r in SEEN["page2"]], items[2:4])
        self.assertIn("after=" + items[1], SEEN["page2_url"])

    def test_record_verified_in_the_browser(self):
        rec = SEEN["record"]
        self.assertEqual(rec["status"], "verified", rec)
        self.assertEqual([s["status"] for s in rec["steps"]], ["ok"] * 4, rec["steps"])
        self.assertEqual(rec["fields"]["seq"], str(SEEN["record_seq"]))
        self.assertEqual(rec["fields"]["item"], ITEM)
        # The leaf hash shown is SHA-256(0x00 || the record's bytes).
        st, body = P.request("GET", "/v1/journal/leaves?start=%d&end=%d" %
                             (SEEN["record_seq"], SEEN["record_seq"] + 1), client="auditor-audit1")
        leaf = lbtest.leaf_hash(lbtest.b64d(body["leaves"][0])).hex()
        self.assertIn(leaf, [s["detail"] for s in rec["steps"] if s["step"] == "Leaf hash"][0])

    def test_tampered_answers_shown_failed(self):
        for what in ("tampered_proof", "tampered_leaf"):
            rec = SEEN[what]
            self.assertEqual(rec["status"], "failed", (what, rec))
            self.assertIn("FAILED", rec["text"])
            failed = [s for s in rec["steps"] if s["status"] == "fail"]
            self.assertEqual([s["step"] for s in failed], ["Inclusion proof"], (what, rec))
            self.assertIn("altered", failed[0]["detail"])

    def test_witness_keeps_checkpoints_and_checks_consistency(self):
        self.assertEqual(SEEN["first_witness"]["status"], "verified", SEEN["first_witness"])
        self.assertEqual(SEEN["witness"]["status"], "verified", SEEN["witness"])
        self.assertIn("consistent with the oldest kept checkpoint", SEEN["witness"]["text"])
        self.assertGreaterEqual(len(SEEN["kept"]), 2)
        self.assertIn("the key you pinned", SEEN["witness_pinned"]["text"])
        self.assertEqual(SEEN["witness_wrong_pin"]["status"], "failed")
        self.assertIn("not the key you pinned", SEEN["witness_wrong_pin"]["text"])
        self.assertEqual(SEEN["witness_tampered"]["status"], "failed", SEEN["witness_tampered"])
        self.assertIn("consistency proof", SEEN["witness_tampered"]["text"])
        self.assertEqual(SEEN["witness_bad_signature"]["status"], "failed")
        self.assertIn("signature does not verify", SEEN["witness_bad_signature"]["text"])

    def test_citizen_view_matches_the_access_report(self):
        self.assertIn("时间", SEEN["citizen_headers"][0])
        self.assertIn("Time", SEEN["citizen_headers"][0])
        st, body = P.request("GET", "/v1/subjects/me/accesses", client="consumer-citizen",
                             headers={"Lianban-Consent": P.issue(NEWBORN, ["access_report"],
                                                                 azp="citizen", bundle="access_report")})
        self.assertEqual(st, 200, body)
        api = body["accesses"]
        # The API's report is newer by one record: the browser's own read.
        self.assertEqual(api[0]["kind"], "audit-read")
        self.assertEqual(api[0]["consumer"], "citizen")
        self.assertEqual([str(a["seq"]) for a in api[1:]], [r["seq"] for r in SEEN["citizen_rows"]])
        by_seq = {str(a["seq"]): a for a in api}
        for r in SEEN["citizen_rows"]:
            a = by_seq[r["seq"]]
            self.assertIn(a.get("consumer", "审计员"), r["cells"][1])
            self.assertEqual(r["cells"][2], a.get("bundle", ""))
            self.assertTrue(r["cells"][3].startswith(a.get("item", "")), r)
        self.assertTrue(any(ITEM in r["cells"][3] and r["cells"][4] == "nhc"
                            for r in SEEN["citizen_rows"]), SEEN["citizen_rows"])

    def test_operations_view_counts_the_exchanges(self):
        ops = SEEN["ops"]
        self.assertEqual(EXPECT["exchanges"], 3)
        self.assertEqual(ops["exchanges"], EXPECT["exchanges"], ops)
        self.assertEqual(ops["items"], EXPECT["items"], ops)
        self.assertEqual(ops["denial_codes"], EXPECT["denials"], ops)
        self.assertEqual(ops["denials"], sum(EXPECT["denials"].values()))
        self.assertEqual({d: {"items": v["items"], "errors": v["errors"]} for d, v in ops["depts"].items()},
                         EXPECT["depts"])
        self.assertEqual(ops["canvases"], 3, ops)
        self.assertIn("for the admin role", SEEN["ops_as_auditor"])

    def test_accessible_and_self_contained(self):
        self.assertEqual(SEEN["labels_missing"], [])
        self.assertLess(SEEN["tabs_to_subject"], 20)
        self.assertLessEqual(SEEN["phone_overflow"], 0)
        self.assertEqual(SEEN["requests_elsewhere"], [])
        self.assertEqual(SEEN["page_errors"], [])
        for name in ("search", "record-verified", "record-tampered", "checkpoints", "citizen", "ops",
                     "phone"):
            self.assertTrue(os.path.getsize(os.path.join(BUILDDIR, "docs", "console", name + ".png")) > 0)


if __name__ == "__main__":
    unittest.main()
