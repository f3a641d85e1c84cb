"""Integration (attack): no server-side request forgery through adapter specs.

A department registers adapters through the API; their endpoints may reach
only the hosts and networks the operator's endpoint list (--endpoints) names
for that department.  Loopback, link-local and private addresses are refused
unless listed, at registration (400 bad_request, nothing journaled or stored)
and again for the address a name resolves to when the request is made (the
item fails as department_unavailable and is journaled, the log says why, and
no connection is made).  The operator's file adapters may name any host.
The list is reloaded on SIGHUP.  The tests run in order on one platform."""

import copy
import json
import os
import re
import subprocess
import sys
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import MOTHER, NEWBORN  # noqa: E402

P = None
PATHS = {"nhc-birth": ("nhc", "birth_medical_certificate",
                       "/nhc/birth-medical-certificates?id={subject}"),
         "cdc-vaccination": ("cdc", "vaccination_record",
                             "/cdc/vaccination-records?id={subject}"),
         "mca-marriage": ("mca", "marriage_certificate",
                          "/mca/marriage-registrations?id={subject}")}


def endpoints(platform, **changes):
    """The operator's list: nhc may reach the simulator's address and port,
    cdc only the name localhost (whose address, 127.0.0.1, is not listed),
    mca nothing; changes replace departments' entries."""
    sim = platform.sim_port
    lst = dict(lbtest.sim_endpoints(platform), cdc=["localhost:%d" % sim], mca=[])
    lst.update(changes)
    return lst


def setUpModule():
    global P
    P = lbtest.Platform(sim_args=["--verbose"], endpoints=endpoints)


def tearDownModule():
    if P is not None:
        P.close()


def gw_log():
    return P.gw_log_text()


def sim_requests(dept):
    """How many requests for dept's data reached the simulator."""
    with open(os.path.join(P.tmp, "deptsim.log"), errors="replace") as f:
        return len(re.findall(r"^deptsim: \S+ CN=\S+ /%s/" % dept, f.read(), re.M))


def reload_with(**changes):
    """Rewrites the endpoint list and waits until SIGHUP applied it."""
    P.write_endpoints(endpoints(P, **changes))
    sighup("reloaded: ")


def sighup(expect):
    P.sighup(expect)


def spec(ident, authority):
    """The demo spec ident, its endpoint at http://AUTHORITY."""
    with open(os.path.join(P.specs, ident + ".json")) as f:
        s = json.load(f)
    s["endpoint"] = "http://%s%s" % (authority, PATHS[ident][2])
    return s


def put(ident, authority):
    dept = PATHS[ident][0]
    return P.request("PUT", "/v1/adapters/" + ident, spec(ident, authority),
                     client="department-" + dept)


def version(ident):
    st, body = P.request("GET", "/v1/adapters/" + ident, client="admin-ops")
    assert st == 200, (st, body)
    return body["version"], body["spec"]["endpoint"]


def adapter_records():
    st, ck = P.request("GET", "/v1/journal/checkpoint", client="auditor-audit1")
    if st == 404:
        return []       # nothing journaled yet
    ck, leaves = P.journal()
    return [r for r in (msgpack.unpackb(x, raw=False) for x in leaves) if r["kind"] == "adapter"]


def fetch(ident, sub=NEWBORN):
    item = PATHS[ident][1]
    token = P.issue(sub, [item])
    st, body = P.exchange(sub, [item], token)
    assert "results" in body, (st, body)
    (r,) = body["results"]
    return r


class SSRF(unittest.TestCase):

    def test_01_forbidden_endpoints_are_refused_at_registration(self):
        sim = P.sim_port
        before = version("nhc-birth")
        records = len(adapter_records())
        refused = [
            ("nhc-birth", "127.0.0.1:%d" % (sim + 1 if sim < 65535 else sim - 1)),  # port
            ("nhc-birth", "127.0.0.2:%d" % sim),             # loopback, unlisted
            ("nhc-birth", "169.254.169.254"),                # cloud metadata
            ("nhc-birth", "[::ffff:169.254.169.254]"),
            ("nhc-birth", "10.0.0.1"),                       # private
            ("nhc-birth", "192.168.1.1:%d" % sim),
            ("nhc-birth", "[::1]:%d" % sim),                 # IPv6 loopback, unlisted
            ("nhc-birth", "[::]:%d" % sim),
            ("nhc-birth", "[fd00::1]"),
            ("nhc-birth", "localhost:%d" % sim),             # a name resolving to loopback
            ("nhc-birth", "metadata.google.internal"),
            ("mca-marriage", "127.0.0.1:%d" % sim),          # mca may reach nothing
        ]
        for ident, authority in refused:
            st, ans = put(ident, authority)
            self.assertEqual(st, 400, (authority, ans))
            self.assertEqual(ans["error"]["code"], "bad_request")
            self.assertIn("endpoint list for department %s" % PATHS[ident][0],
                          ans["error"]["message"])
        # Nothing stored, nothing journaled, every refusal logged.
        self.assertEqual(version("nhc-birth"), before)
        self.assertEqual(len(adapter_records()), records)
        self.assertEqual(gw_log().count('registry: adapter "nhc-birth" of nhc refused'),
                         len(refused) - 1)
        self.assertIn("the host 169.254.169.254 (port 80, a link-local address)", gw_log())
        self.assertEqual(fetch("nhc-birth")["status"], "ok")

    def test_02_listed_endpoints_work(self):
        sim = P.sim_port
        for authority in ("127.0.0.1:%d" % sim, "[::ffff:127.0.0.1]:%d" % sim):
            st, ans = put("nhc-birth", authority)
            self.assertEqual(st, 200, ans)
            self.assertEqual(version("nhc-birth")[1], spec("nhc-birth", authority)["endpoint"])
            r = fetch("nhc-birth")
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["document"]["holder"]["id"], NEWBORN)

    def test_03_file_adapters_may_name_any_host(self):
        # mca lists nothing, and its file adapter reaches the simulator on loopback.
        r = fetch("mca-marriage", MOTHER)
        self.assertEqual(r["status"], "ok", r)

    def test_04_a_listed_name_resolving_to_a_forbidden_address(self):
        sim = P.sim_port
        st, ans = put("cdc-vaccination", "localhost:%d" % sim)
        self.assertEqual(st, 200, ans)             # the name is listed
        reached = sim_requests("cdc")
        r = fetch("cdc-vaccination")
        self.assertEqual(r["status"], "department_unavailable", r)
        self.assertIn("endpoint list", r["message"])
        self.assertNotIn("127.0.0.1", r["message"])     # the log has the details
        self.assertEqual(sim_requests("cdc"), reached)  # no request left the gateway
        self.assertIn('adapter "cdc-vaccination" of cdc: localhost resolves to 127.0.0.1 '
                      "(port %d, a loopback address), which the endpoint list does not "
                      "allow" % sim, gw_log())
        ck, leaves = P.journal()
        rec = msgpack.unpackb(leaves[r["journal_seq"]], raw=False)
        self.assertEqual((rec["kind"], rec["dept"], rec["code"]),
                         ("item", "cdc", "department_unavailable"))
        # The operator lists the address as well: the same adapter works.
        reload_with(cdc=["localhost:%d" % sim, "127.0.0.1:%d" % sim])
        r = fetch("cdc-vaccination")
        self.assertEqual(r["status"], "ok", r)
        self.assertEqual(sim_requests("cdc"), reached + 1)

    def test_05_the_list_is_checked_at_every_request(self):
        sim = P.sim_port
        # nhc-birth was registered for 127.0.0.1; the operator takes it off the list.
        reload_with(nhc=["localhost:%d" % sim])
        r = fetch("nhc-birth")
        self.assertEqual(r["status"], "department_unavailable", r)
        # A listed name whose address is listed too works.
        reload_with(nhc=["localhost:%d" % sim, "127.0.0.0/8:%d" % sim, "[::1]"])
        st, ans = put("nhc-birth", "LocalHost:%d" % sim)
        self.assertEqual(st, 200, ans)
        self.assertEqual(fetch("nhc-birth")["status"], "ok")
        st, ans = put("nhc-birth", "[::1]:%d" % sim)       # listed, any port
        self.assertEqual(st, 200, ans)

    def test_06_a_broken_list_keeps_the_running_one(self):
        sim = P.sim_port
        st, ans = put("nhc-birth", "127.0.0.1:%d" % sim)
        self.assertEqual(st, 200, ans)
        with open(P.endpoints, "w") as f:
            f.write('{"departments": {"nhc": ["10.0.0.1/33"]}}')
        sighup("reload failed")
        self.assertIn("endpoints.json: department \"nhc\": entry \"10.0.0.1/33\"", gw_log())
        # Exchanges go on under the running list ...
        self.assertEqual(fetch("nhc-birth")["status"], "ok")
        # ... and registry changes, which load the files too, wait for a good one.
        st, ans = put("nhc-birth", "localhost:%d" % sim)
        self.assertEqual(st, 400, ans)
        self.assertIn("endpoints.json", ans["error"]["message"])
        reload_with()
        st, ans = put("nhc-birth", "127.0.0.1:%d" % sim)
        self.assertEqual(st, 200, ans)
        self.assertEqual(fetch("nhc-birth")["status"], "ok")

    def test_07_a_list_that_cannot_be_read_stops_the_start(self):
        bad = os.path.join(P.tmp, "bad-endpoints.json")
        with open(bad, "w") as f:
            f.write('{"departments": {"nhc": ["::1"]}}')
        for path, why in ((os.path.join(P.tmp, "missing.json"), "missing.json"),
                          (bad, "brackets")):
            out = subprocess.run(
                lbtest.WRAP + [lbtest.LIANBAND, "--listen", "127.0.0.1:0",
                               "--data", os.path.join(P.tmp, "var-bad"), "--certs", P.pki,
                               "--policies", os.path.join(lbtest.SRCDIR, "policies"),
                               "--adapters", P.specs, "--endpoints", path],
                capture_output=True, text=True, timeout=60)
            self.assertEqual(out.returncode, 1, out.stderr)
            self.assertIn(why, out.stderr)
            self.assertNotIn("listening on", out.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
