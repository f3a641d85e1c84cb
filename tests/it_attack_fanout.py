"""Integration (attack): a department registers adapters whose endpoints are
IPv6 literals, the admin puts three of their items in one bundle policy, and
one exchange asks for all three.  The daemon must stay up and answer every
item: a fetch whose connection fails before libevent returns (an address it
cannot reach, a name it cannot resolve) is reported on the loop like any other
failure, and bracketed IPv6 literals are real endpoints: an IPv4-mapped one
reaches the simulator over IPv4, a plain one over IPv6 when the simulator
listens on ::1 too."""

import copy
import json
import os
import re
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

BUNDLE = "v6_attack"
PATH = "/nhc/birth-medical-certificates?id={subject}"


def ipv6_loopback():
    """True when this host can listen on ::1."""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def free_port(family, host):
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Endpoints(unittest.TestCase):
    """One platform per class; the simulator listens on 127.0.0.1 and, when
    it can, ::1, with the class's extra arguments."""

    SIM_ARGS = []

    @classmethod
    def setUpClass(cls):
        cls.v6 = ipv6_loopback()
        sim_args = ["--verbose"] + cls.SIM_ARGS + (["--listen", "[::1]:0"] if cls.v6 else [])
        # The operator lets nhc reach the simulator's loopback addresses, any port,
        # and the names the tests use (tests/it_attack_ssrf.py tests the list).
        cls.P = lbtest.Platform(sim_args=sim_args, endpoints=lambda P: dict(
            lbtest.sim_endpoints(P),
            nhc=["127.0.0.1", "[::1]", "localhost", "nosuch-department.invalid"]))
        with open(os.path.join(cls.P.tmp, "deptsim.log")) as f:
            log = f.read()
        cls.v6_port = None
        if cls.v6:
            m = re.search(r"listening on \[::1\]:(\d+)", log)
            assert m, log
            cls.v6_port = int(m.group(1))
        with open(os.path.join(cls.P.specs, "nhc-birth.json")) as f:
            cls.base = json.load(f)

    @classmethod
    def tearDownClass(cls):
        cls.P.close()

    def adapter(self, ident, item, endpoint):
        """The demo nhc adapter, as adapter ident serving item at endpoint."""
        spec = copy.deepcopy(self.base)
        spec["id"] = ident
        spec["items"] = [item]
        spec["endpoint"] = endpoint
        # 1 ms for a name no resolver knows: the fetch most likely times out
        # with its question still out, which must free it all the same.
        spec["timeout_ms"] = 1 if ".invalid" in endpoint else 5000
        mapping = spec["mapping"].pop("birth_medical_certificate")
        mapping["type"] = item
        spec["mapping"] = {item: mapping}
        return spec

    def register(self, endpoints):
        """Registers one adapter per endpoint as department nhc and a bundle
        policy holding their items; returns the items, in order."""
        items = []
        for i, ep in enumerate(endpoints):
            item = "birth_v6_%d" % i
            ident = "nhc-v6-%d" % i
            st, ans = self.P.request("PUT", "/v1/adapters/" + ident,
                                     self.adapter(ident, item, ep), client="department-nhc")
            self.assertEqual(st, 200, ans)
            items.append(item)
        policy = {
            "bundle": BUNDLE, "name": "IPv6 endpoints", "purpose": "attack test",
            "consumers": ["newborn"],
            "assurance": {"amr": ["face"], "min_liveness": 900, "min_match": 900},
            "rate_limit": {"per_second": 100, "burst": 100},
            "items": [{"item": it, "dept": "nhc", "fields": ["gender", "birth_date"]}
                      for it in items]}
        st, ans = self.P.request("PUT", "/v1/policies/" + BUNDLE, policy, client="admin-ops")
        self.assertEqual(st, 200, ans)
        return items

    def exchange(self, items):
        token = lbtest.issue_independent(self.P.pki, NEWBORN, items, bundle=BUNDLE)
        st, body = self.P.exchange(NEWBORN, items, token, bundle=BUNDLE)
        self.assertIsNone(self.P.gw.poll(), "lianband died during the exchange")
        self.assertEqual(st, 200, body)
        results = {r["item"]: r for r in body["results"]}
        self.assertEqual(sorted(results), sorted(items))
        return results

    def alive(self):
        self.assertIsNone(self.P.gw.poll(), "lianband died")
        st, body = self.P.request("GET", "/v1/health", client=None)
        self.assertEqual((st, body["status"]), (200, "ok"), body)

    def seen(self):
        """(client address, Host, SNI) of every nhc request the simulator logged."""
        with open(os.path.join(self.P.tmp, "deptsim.log")) as f:
            return re.findall(r"^deptsim: (\S+):\d+ CN=\S+ /nhc/\S+ Host=(\S+) SNI=(\S+)$",
                              f.read(), re.M)


class IPv6Endpoints(Endpoints):
    """Plain HTTP."""

    def test_three_ipv6_items_in_one_exchange(self):
        dead6 = free_port(socket.AF_INET6, "::1") if self.v6 else 9
        dead4 = free_port(socket.AF_INET, "127.0.0.1")
        mapped_ok = "http://[::ffff:127.0.0.1]:%d%s" % (self.P.sim_port, PATH)
        endpoints = [
            # Nobody listens there: the connection fails, at once or on the loop.
            "http://[::1]:%d%s" % (dead6, PATH),
            # IPv4-mapped: the simulator's IPv4 listener answers.
            mapped_ok,
            # Another address nobody listens on, through the mapped form.
            "http://[::ffff:127.0.0.1]:%d%s" % (dead4, PATH),
        ]
        items = self.register(endpoints)
        for _ in range(2):      # twice: the pooled connections must be sound as well
            results = self.exchange(items)
            self.alive()
            dead_a, ok, dead_b = (results[i] for i in items)
            for r in (dead_a, dead_b):
                self.assertEqual(r["status"], "department_unavailable", r)
                self.assertIn("nhc", r["message"])
            self.assertEqual(ok["status"], "ok", ok)
            self.assertEqual(ok["document"]["holder"]["id"], NEWBORN)
            self.assertIn("seal", ok)
        with open(os.path.join(self.P.tmp, "deptsim.log")) as f:
            self.assertIn("Host=[::ffff:127.0.0.1]:%d" % self.P.sim_port, f.read())

    def test_ipv6_department_answers(self):
        if not self.v6:
            self.skipTest("no IPv6 loopback on this host")
        endpoints = ["http://[::1]:%d%s" % (self.v6_port, PATH),
                     "http://[0:0:0:0:0:0:0:1]:%d%s" % (self.v6_port, PATH),
                     "http://[::1]:%d%s" % (self.v6_port, PATH.replace("nhc", "nosuch"))]
        items = self.register(endpoints)
        results = self.exchange(items)
        self.alive()
        a, b, c = (results[i] for i in items)
        for r in (a, b):
            self.assertEqual(r["status"], "ok", r)
            self.assertEqual(r["document"]["holder"]["id"], NEWBORN)
        self.assertEqual(c["status"], "department_bad_response", c)
        # The requests came over IPv6, with the bracketed literal and the port as Host.
        seen = self.seen()
        self.assertIn(("::1", "[::1]:%d" % self.v6_port, "-"), seen)
        self.assertIn(("::1", "[0:0:0:0:0:0:0:1]:%d" % self.v6_port, "-"), seen)

    def test_names_resolved_on_the_loop(self):
        """Names are resolved without blocking the loop: from /etc/hosts at
        once, or by the resolver; one that does not resolve fails its item
        only (the resolver may still be asked when the daemon stops)."""
        port = self.P.sim_port
        endpoints = ["http://localhost:%d%s" % (port, PATH),
                     "http://nosuch-department.invalid:%d%s" % (port, PATH),
                     "http://LocalHost:%d%s" % (port, PATH)]
        items = self.register(endpoints)
        results = self.exchange(items)
        self.alive()
        a, bad, c = (results[i] for i in items)
        for r in (a, c):
            self.assertEqual(r["status"], "ok", r)
        self.assertIn(bad["status"], ("department_unavailable", "department_timeout"), bad)
        self.assertIn("nhc", bad["message"])
        with open(os.path.join(self.P.tmp, "deptsim.log")) as f:
            self.assertIn("Host=LocalHost:%d" % port, f.read())


class TlsEndpoints(Endpoints):
    """https endpoints (the simulator's certificate names localhost and
    127.0.0.1): an IP literal is checked against the address connected to and
    sends no SNI, a name is checked and sent as SNI."""

    SIM_ARGS = ["--tls-dir", lbtest.demo_pki()]

    def test_literals_and_names(self):
        port = self.P.sim_port
        third = ("https://[::1]:%d%s" % (self.v6_port, PATH) if self.v6 else
                 "https://127.0.0.1:%d%s" % (port, PATH))
        endpoints = ["https://[::ffff:127.0.0.1]:%d%s" % (port, PATH),
                     "https://localhost:%d%s" % (port, PATH), third]
        items = self.register(endpoints)
        results = self.exchange(items)
        self.alive()
        mapped, name, other = (results[i] for i in items)
        for r in (mapped, name):
            self.assertEqual(r["status"], "ok", r)
        if self.v6:
            # The certificate does not name ::1.
            self.assertEqual(other["status"], "department_unavailable", other)
            self.assertIn("IP address mismatch", other["message"])
        else:
            self.assertEqual(other["status"], "ok", other)
        seen = self.seen()
        self.assertIn(("127.0.0.1", "[::ffff:127.0.0.1]:%d" % port, "-"), seen)
        self.assertIn(("127.0.0.1", "localhost:%d" % port, "localhost"), seen)


if __name__ == "__main__":
    unittest.main(verbosity=2)
