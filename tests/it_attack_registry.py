"""Attack: registry abuse by a department.

Quotas per department (--registry-ids, --registry-versions, --registry-bytes,
small here): department A (psb) fills its id quota and gets 413 too_large
while department B (mca) and the admin go on registering; A's versions beyond
the quota are removed from the registry (GET shows the current one, the
journal keeps every change with its spec hash), which is what lets A replace
a large spec again and again within its byte quota; A's byte quota then ends
in 413 too_large, for A only.

Squatting: a department (edu) cannot take an adapter id that an operator's
file adapter of another department (nhc) holds, neither at PUT nor by having
registered the id before the operator shipped the file: after SIGHUP the file
adapter is served and the log names the squatting entry.  The tests run in
order on one platform."""

import copy
import hashlib
import json
import os
import signal
import sys
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
A, B, SQUATTER = "psb", "mca", "edu"
with open(os.path.join(lbtest.SRCDIR, "adapters", "specs", "nhc-birth.json")) as f:
    BASE = json.load(f)
with open(os.path.join(lbtest.SRCDIR, "policies", "newborn.json")) as f:
    POLICY = json.load(f)
PAD = 200           # code table entries of a large spec (about 20 kB)


def junk(dept, ident, item, big=False, note=""):
    """An adapter of dept serving its own item, never fetched; big pads it
    with a code table."""
    spec = copy.deepcopy(BASE)
    mapping = spec["mapping"].pop(ITEM)
    mapping["type"] = item
    mapping["issuer"]["dept"] = dept
    if big:
        mapping["fields"]["gender"]["codes"] = {"k%04d" % i: "v" * 90 for i in range(PAD)}
    spec.update(id=ident, dept=dept, seal=dept, items=[item], mapping={item: mapping},
                endpoint="http://127.0.0.1:9/none?id={subject}", description="junk " + note)
    return spec


def junk_endpoints(platform):
    """The simulator, and the junk adapters' address, which is never fetched."""
    return {d: ["127.0.0.1:%d" % platform.sim_port, "127.0.0.1:9"] for d in lbtest.DEPARTMENTS}


def size(spec):
    """Bytes the registry stores: the canonical msgpack of the spec."""
    return len(lbtest.canonical(spec))


SMALL = [junk(A, "psb-junk-%d" % i, "junk_%d" % i) for i in (1, 2, 3)]
BIG1 = [junk(A, "psb-junk-1", "junk_1", big=True, note="v%d" % v) for v in range(2, 7)]
BIG2 = [junk(A, "psb-junk-2", "junk_2", big=True, note="v%d" % v) for v in (2, 3)]
S1, S2, S3 = (size(s) for s in SMALL)
B1, B2 = size(BIG1[0]), size(BIG2[0])
# A's byte quota: two large versions of junk-1 and one of junk-2 fit beside the
# small ones; a second large one of junk-2 does not; and without the removal of
# old versions five large versions of junk-1 would not fit either.
QUOTA = 2 * B1 + B2 + S2 + S3 + (B2 - S2) // 2
assert 2 * B1 + B2 + S2 + S3 <= QUOTA < 2 * B1 + 2 * B2 + S3
assert S1 + len(BIG1) * B1 + S2 + S3 > QUOTA
P = None


def setUpModule():
    global P
    P = lbtest.Platform(gw_args=["--registry-ids", "3", "--registry-versions", "2",
                                 "--registry-bytes", str(QUOTA)], endpoints=junk_endpoints)


def tearDownModule():
    if P is not None:
        P.close()


def put(dept, spec):
    return P.request("PUT", "/v1/adapters/" + spec["id"], spec, client="department-" + dept)


def adapter_changes(ident):
    ck, leaves = P.journal()
    recs = [msgpack.unpackb(x, raw=False) for x in leaves]
    return [r for r in recs if r["kind"] == "adapter" and r["id"] == ident]


def reload_gateway():
    """SIGHUP, then waits for the reload's log line; returns what the gateway
    logged meanwhile."""
    with open(P.gw_log, errors="replace") as f:
        start = len(f.read())
    P.gw.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 30
    while True:
        with open(P.gw_log, errors="replace") as f:
            log = f.read()[start:]
        if "reloaded:" in log:
            return log
        if time.monotonic() > deadline:
            raise AssertionError("no reload after SIGHUP:\n" + log)
        time.sleep(0.05)


def birth_certificate():
    st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
    if "results" not in body:
        return body["error"]["code"]
    return body["results"][0]["status"]


class Quotas(unittest.TestCase):

    def test_01_id_quota(self):
        for spec in SMALL:
            st, ans = put(A, spec)
            self.assertEqual((st, ans.get("version")), (200, 1), ans)
        st, ans = put(A, junk(A, "psb-junk-4", "junk_4"))
        self.assertEqual((st, ans["error"]["code"]), (413, "too_large"), ans)
        self.assertIn("psb", ans["error"]["message"])
        status, _ = P.request("GET", "/v1/adapters/psb-junk-4", client="admin-ops")
        self.assertEqual(status, 404)
        self.assertEqual(adapter_changes("psb-junk-4"), [])   # refused before the journal
        # The others are not locked out.
        st, ans = put(B, junk(B, "mca-own", "mca_item"))
        self.assertEqual((st, ans.get("version")), (200, 1), ans)
        st, ans = P.request("PUT", "/v1/policies/newborn", POLICY, client="admin-ops")
        self.assertEqual(st, 200, ans)

    def test_02_old_versions_are_removed_from_the_registry_not_the_journal(self):
        for v, spec in enumerate(BIG1, start=2):
            st, ans = put(A, spec)
            self.assertEqual((st, ans.get("version")), (200, v), ans)
        st, body = P.request("GET", "/v1/adapters/psb-junk-1", client="department-psb")
        self.assertEqual((st, body.get("version")), (200, 6), body)
        self.assertEqual(body["spec"]["description"], "junk v6")
        changes = adapter_changes("psb-junk-1")
        self.assertEqual([c["version"] for c in changes], [1, 2, 3, 4, 5, 6])
        for c, spec in zip(changes, [SMALL[0]] + BIG1):
            self.assertEqual(c["spec"], hashlib.sha256(lbtest.canonical(spec)).digest())

    def test_03_byte_quota(self):
        st, ans = put(A, BIG2[0])
        self.assertEqual((st, ans.get("version")), (200, 2), ans)
        st, ans = put(A, BIG2[1])
        self.assertEqual((st, ans["error"]["code"]), (413, "too_large"), ans)
        self.assertIn("quota", ans["error"]["message"])
        st, body = P.request("GET", "/v1/adapters/psb-junk-2", client="department-psb")
        self.assertEqual(body["version"], 2, body)
        # B and the admin still register.
        st, ans = put(B, junk(B, "mca-own", "mca_item", big=True))
        self.assertEqual((st, ans.get("version")), (200, 2), ans)
        st, ans = P.request("PUT", "/v1/policies/newborn", POLICY, client="admin-ops")
        self.assertEqual(st, 200, ans)
        # A can still replace what it holds with something smaller.
        st, ans = put(A, SMALL[1])
        self.assertEqual((st, ans.get("version")), (200, 3), ans)


class Squat(unittest.TestCase):

    def test_01_squat_of_a_file_adapter_at_put(self):
        spec = junk(SQUATTER, "nhc-birth", "edu_item")
        st, ans = put(SQUATTER, spec)
        self.assertEqual((st, ans["error"]["code"]), (403, "forbidden_role"), ans)
        self.assertEqual(birth_certificate(), "ok")

    def test_02_squat_before_the_file_adapter_ships(self):
        st, ans = put(SQUATTER, junk(SQUATTER, "nhc-later", "edu_item"))
        self.assertEqual((st, ans.get("version")), (200, 1), ans)
        # The operator ships nhc's adapter under that id, in place of nhc-birth.
        with open(os.path.join(P.specs, "nhc-birth.json")) as f:
            shipped = json.load(f)
        shipped["id"] = "nhc-later"
        lbtest.write_json(P.specs, "nhc-later.json", shipped)
        os.unlink(os.path.join(P.specs, "nhc-birth.json"))
        # Before the reload the squatter can no longer add a version ...
        st, ans = put(SQUATTER, junk(SQUATTER, "nhc-later", "edu_item", note="again"))
        self.assertEqual((st, ans["error"]["code"]), (403, "forbidden_role"), ans)
        self.assertIn("nhc", ans["error"]["message"])
        # ... and after it the file adapter is served, the squat named in the log.
        log = reload_gateway()
        self.assertRegex(log, r'registry: adapter "nhc-later" version 1 of department edu'
                              r'.*department:edu.*left out.*file adapter "nhc-later" of '
                              r'department nhc')
        self.assertEqual(birth_certificate(), "ok")
        st, body = P.request("GET", "/v1/adapters/nhc-later", client="admin-ops")
        self.assertEqual((st, body["dept"], body["version"]), (200, "nhc", 1), body)
        st, ans = put(SQUATTER, junk(SQUATTER, "nhc-later", "edu_item", note="more"))
        self.assertEqual((st, ans["error"]["code"]), (403, "forbidden_role"), ans)

    def test_03_the_owner_takes_its_id_back(self):
        with open(os.path.join(P.specs, "nhc-later.json")) as f:
            spec = json.load(f)
        spec["description"] = "registered by nhc"
        st, ans = put("nhc", spec)
        self.assertEqual((st, ans.get("version")), (200, 2), ans)
        self.assertEqual(birth_certificate(), "ok")
        (c,) = [c for c in adapter_changes("nhc-later") if c["version"] == 2]
        self.assertEqual(c["principal"], "department:nhc")
        self.assertNotIn("left out", reload_gateway())
        st, body = P.request("GET", "/v1/adapters/nhc-later", client="department-nhc")
        self.assertEqual((st, body["version"], body["spec"]["description"]),
                         (200, 2, "registered by nhc"), body)


if __name__ == "__main__":
    unittest.main()
