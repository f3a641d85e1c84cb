"""Integration: the adapter and policy registry (PUT/GET/DELETE /v1/adapters,
PUT/GET /v1/policies) on the real lianband: ownership, validation, hot update
of the next exchange, journal records of every change, and persistence across
a restart.  The tests run in order on one platform."""

import copy
import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
P = None
SPEC = None       # the demo nhc adapter, pointed at this platform's simulator
POLICY = None     # the demo newborn policy
TMP = None


def setUpModule():
    global P, SPEC, POLICY, TMP
    P = lbtest.Platform()
    with open(os.path.join(P.specs, "nhc-birth.json")) as f:
        SPEC = json.load(f)
    with open(os.path.join(lbtest.SRCDIR, "policies", "newborn.json")) as f:
        POLICY = json.load(f)
    TMP = tempfile.mkdtemp(prefix="lianban-reg-")


def tearDownModule():
    if TMP is not None:
        shutil.rmtree(TMP, ignore_errors=True)
    if P is not None:
        P.close()


def spec_hash(obj):
    return hashlib.sha256(lbtest.canonical(obj)).digest()


def changes():
    """The journal's adapter and policy records, in seq order."""
    status, ck = P.request("GET", "/v1/journal/checkpoint", client="auditor-audit1")
    if status == 404:
        return []       # nothing journaled yet
    ck, leaves = P.journal()
    recs = [msgpack.unpackb(x, raw=False) for x in leaves]
    return [r for r in recs if r["kind"] in ("adapter", "policy")]


def fetch():
    """One newborn exchange for the birth certificate; returns the result."""
    token = P.issue(NEWBORN, [ITEM])
    status, body = P.exchange(NEWBORN, [ITEM], token)
    assert status in (200, 403, 404, 502), (status, body)
    if "results" not in body:
        return {"status": body["error"]["code"], "http": status}
    (r,) = body["results"]
    return r


def adapter(client="admin-ops", ident="nhc-birth"):
    status, body = P.request("GET", "/v1/adapters/" + ident, client=client)
    assert status == 200, (status, body)
    return body


def mapped(codes):
    spec = copy.deepcopy(SPEC)
    spec["mapping"][ITEM]["fields"]["gender"]["codes"] = codes
    return spec


class Registry(unittest.TestCase):

    def test_01_roles(self):
        for method, path in (("GET", "/v1/adapters"), ("GET", "/v1/adapters/nhc-birth"),
                             ("PUT", "/v1/adapters/nhc-birth"),
                             ("DELETE", "/v1/adapters/nhc-birth"),
                             ("PUT", "/v1/policies/newborn")):
            body = SPEC if method == "PUT" and "adapters" in path else (
                POLICY if method == "PUT" else None)
            for client in ("consumer-newborn", "auditor-audit1"):
                status, ans = P.request(method, path, body, client=client)
                self.assertEqual(status, 403, (method, path, client, ans))
                self.assertEqual(ans["error"]["code"], "forbidden_role")
        # Policies are readable by any authenticated role, not without a certificate.
        status, ans = P.request("GET", "/v1/policies", client="consumer-newborn")
        self.assertEqual(status, 200, ans)
        self.assertIn("newborn", [p["bundle"] for p in ans["policies"]])
        status, ans = P.request("GET", "/v1/policies", client=None)
        self.assertEqual(status, 401, ans)
        self.assertEqual(changes(), [])

    def test_02_lists_by_role(self):
        status, ans = P.request("GET", "/v1/adapters", client="admin-ops")
        self.assertEqual(status, 200, ans)
        (a,) = [a for a in ans["adapters"] if a["id"] == "nhc-birth"]
        self.assertEqual((a["dept"], a["version"], a["disabled"]), ("nhc", 1, False))
        every = {a["id"]: a["dept"] for a in ans["adapters"]}
        self.assertIn("psb", every.values())
        for dept in ("psb", "nhc"):
            status, ans = P.request("GET", "/v1/adapters", client="department-" + dept)
            self.assertEqual(status, 200, ans)
            self.assertEqual({a["id"]: a["dept"] for a in ans["adapters"]},
                             {i: d for i, d in every.items() if d == dept})
        self.assertEqual(every["nhc-birth"], "nhc")
        # Another department may not read nhc's spec; nhc and the admin may.
        status, ans = P.request("GET", "/v1/adapters/nhc-birth", client="department-psb")
        self.assertEqual(status, 403, ans)
        body = adapter("department-nhc")
        self.assertEqual(body["spec"]["endpoint"], SPEC["endpoint"])
        status, ans = P.request("GET", "/v1/adapters/nope", client="admin-ops")
        self.assertEqual(status, 404, ans)
        # The lianctl views agree.
        out = P.ctl("adapter", "list", client="admin-ops")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"nhc-birth\s+nhc\s+1\s+enabled\s+" + ITEM)
        out = P.ctl("adapter", "list", client="department-psb")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn("nhc-birth", out.stdout)

    def test_03_other_department_cannot_touch(self):
        before = fetch()
        self.assertEqual(before["status"], "ok", before)
        self.assertEqual(before["document"]["fields"]["gender"], "male")
        # psb sending nhc's spec, psb claiming the id for itself, psb disabling it.
        status, ans = P.request("PUT", "/v1/adapters/nhc-birth", mapped({"1": "X"}),
                                client="department-psb")
        self.assertEqual((status, ans["error"]["code"]), (403, "forbidden_role"), ans)
        stolen = mapped({"1": "X"})
        stolen["dept"] = "psb"
        stolen["seal"] = "psb"
        stolen["mapping"][ITEM]["issuer"]["dept"] = "psb"
        status, ans = P.request("PUT", "/v1/adapters/nhc-birth", stolen,
                                client="department-psb")
        self.assertEqual((status, ans["error"]["code"]), (403, "forbidden_role"), ans)
        status, ans = P.request("DELETE", "/v1/adapters/nhc-birth", client="department-psb")
        self.assertEqual((status, ans["error"]["code"]), (403, "forbidden_role"), ans)
        out = P.ctl("adapter", "disable", "nhc-birth", client="department-psb")
        self.assertEqual(out.returncode, 1)
        self.assertIn("forbidden_role", out.stderr)
        # Nothing changed.
        body = adapter()
        self.assertEqual((body["version"], body["disabled"]), (1, False))
        self.assertEqual(fetch()["document"]["fields"]["gender"], "male")
        self.assertEqual(changes(), [])

    def test_04_register_applies_to_the_next_exchange(self):
        spec = mapped({"1": "M", "2": "F"})
        out = P.ctl("adapter", "register", lbtest.write_json(TMP, "v2.json", spec),
                    client="department-nhc")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("version 2", out.stdout)
        r = fetch()
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(r["document"]["fields"]["gender"], "M")
        body = adapter("department-nhc")
        self.assertEqual(body["version"], 2)
        self.assertEqual(body["spec"]["mapping"][ITEM]["fields"]["gender"]["codes"],
                         {"1": "M", "2": "F"})
        # A second version through the API in msgpack; versions keep increasing.
        spec3 = mapped({"1": "boy", "2": "girl"})
        status, ans = P.request("PUT", "/v1/adapters/nhc-birth", lbtest.canonical(spec3),
                                client="department-nhc", ctype="application/msgpack")
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans, {"id": "nhc-birth", "version": 3, "disabled": False})
        self.assertEqual(fetch()["document"]["fields"]["gender"], "boy")
        (c2, c3) = changes()
        for c, v, s in ((c2, 2, spec), (c3, 3, spec3)):
            self.assertEqual((c["kind"], c["id"], c["dept"], c["version"], c["op"]),
                             ("adapter", "nhc-birth", "nhc", v, "put"))
            self.assertEqual(c["principal"], "department:nhc")
            self.assertEqual(c["spec"], spec_hash(s))
        out = P.ctl("adapter", "show", "nhc-birth", client="department-nhc")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("version 3", out.stdout)
        self.assertIn('"girl"', out.stdout)

    def test_05_malformed_specs_change_nothing(self):
        n = len(changes())
        bad_format = mapped({"1": "Z"})
        bad_format["format"] = "yaml"
        no_mapping = mapped({"1": "Z"})
        del no_mapping["mapping"]
        wrong_id = mapped({"1": "Z"})
        wrong_id["id"] = "nhc-other"
        bad_seal = mapped({"1": "Z"})
        bad_seal["seal"] = "nosuchseal"
        for spec in (bad_format, no_mapping, wrong_id, bad_seal):
            status, ans = P.request("PUT", "/v1/adapters/nhc-birth", spec,
                                    client="department-nhc")
            self.assertEqual(status, 400, ans)
            self.assertEqual(ans["error"]["code"], "bad_request")
            self.assertTrue(ans["error"]["message"])
        for raw in (b"{not json", b"[1,2]"):
            status, ans = P.request("PUT", "/v1/adapters/nhc-birth", raw,
                                    client="department-nhc")
            self.assertEqual(status, 400, ans)
        out = P.ctl("adapter", "register", lbtest.write_json(TMP, "bad.json", bad_format),
                    client="department-nhc")
        self.assertEqual(out.returncode, 1)
        self.assertIn("bad_request", out.stderr)
        self.assertEqual(adapter()["version"], 3)
        self.assertEqual(fetch()["document"]["fields"]["gender"], "boy")
        self.assertEqual(len(changes()), n)

    def test_06_policies(self):
        policy = copy.deepcopy(POLICY)
        (birth,) = [i for i in policy["items"] if i["item"] == ITEM]
        birth["fields"].remove("gender")
        # Only the admin loads policies; the bundle must match the path.
        status, ans = P.request("PUT", "/v1/policies/newborn", policy,
                                client="department-nhc")
        self.assertEqual(status, 403, ans)
        status, ans = P.request("PUT", "/v1/policies/school_enrollment", policy,
                                client="admin-ops")
        self.assertEqual(status, 400, ans)
        broken = copy.deepcopy(policy)
        broken["items"] = "all"
        status, ans = P.request("PUT", "/v1/policies/newborn", broken, client="admin-ops")
        self.assertEqual((status, ans["error"]["code"]), (400, "bad_request"), ans)
        self.assertFalse([c for c in changes() if c["kind"] == "policy"])
        path = lbtest.write_json(TMP, "newborn.json", policy)
        out = P.ctl("policy", "load", path, client="admin-ops")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("version 2", out.stdout)
        r = fetch()
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn("gender", r["document"]["fields"])
        self.assertIn("birth_date", r["document"]["fields"])
        status, ans = P.request("GET", "/v1/policies/newborn", client="consumer-newborn")
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["version"], 2)
        (birth,) = [i for i in ans["spec"]["items"] if i["item"] == ITEM]
        self.assertNotIn("gender", birth["fields"])
        (c,) = [c for c in changes() if c["kind"] == "policy"]
        self.assertEqual((c["bundle"], c["version"], c["principal"], c["op"]),
                         ("newborn", 2, "admin:ops", "put"))
        self.assertEqual(c["spec"], spec_hash(policy))
        out = P.ctl("policy", "list", client="department-psb")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"newborn\s+2\s")
        out = P.ctl("policy", "show", "newborn", "--json", client="auditor-audit1")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["version"], 2)

    def test_07_disable(self):
        out = P.ctl("adapter", "disable", "nhc-birth", client="department-nhc")
        self.assertEqual(out.returncode, 0, out.stderr)
        r = fetch()
        self.assertEqual(r["status"], "no_adapter", r)
        body = adapter("department-nhc")
        self.assertEqual((body["version"], body["disabled"]), (3, True))
        c = changes()[-1]
        self.assertEqual((c["kind"], c["id"], c["op"], c["version"], c["principal"]),
                         ("adapter", "nhc-birth", "disable", 3, "department:nhc"))
        # Disabling again changes nothing and journals nothing.
        n = len(changes())
        status, ans = P.request("DELETE", "/v1/adapters/nhc-birth", client="department-nhc")
        self.assertEqual(status, 200, ans)
        self.assertEqual(len(changes()), n)
        status, ans = P.request("DELETE", "/v1/adapters/nope", client="department-nhc")
        self.assertEqual(status, 404, ans)

    def test_08_survives_restart(self):
        self.assertEqual(P.stop_gateway(), 0)
        P.port = P.start_gateway()
        body = adapter()
        self.assertEqual((body["version"], body["disabled"]), (3, True))
        self.assertEqual(fetch()["status"], "no_adapter")
        status, ans = P.request("GET", "/v1/policies/newborn", client="admin-ops")
        self.assertEqual(ans["version"], 2)
        # Registering again enables the adapter, as version 4, without a restart.
        status, ans = P.request("PUT", "/v1/adapters/nhc-birth", mapped({"1": "M", "2": "F"}),
                                client="department-nhc")
        self.assertEqual((status, ans["version"]), (200, 4), ans)
        r = fetch()
        self.assertEqual(r["status"], "ok", r)
        self.assertNotIn("gender", r["document"]["fields"])     # policy v2 still applies
        self.assertEqual(P.stop_gateway(), 0)
        P.port = P.start_gateway()
        self.assertEqual(adapter()["version"], 4)
        self.assertEqual(fetch()["status"], "ok")
        # The journal still verifies with every change in it.
        ck, leaves = P.journal()
        lbtest.verify_checkpoint(ck, leaves, os.path.join(P.pki, "journal", "checkpoint.pem"))
        self.assertEqual([(c["kind"], c["version"], c["op"]) for c in changes()],
                         [("adapter", 2, "put"), ("adapter", 3, "put"), ("policy", 2, "put"),
                          ("adapter", 3, "disable"), ("adapter", 4, "put")])


if __name__ == "__main__":
    unittest.main(verbosity=2)
