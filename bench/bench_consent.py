#!/usr/bin/env python3
"""Latency of the consent paths through the real lianband and department
simulator on loopback: a self exchange, a guardian exchange (proof fetched
once and reused as the requested item), a refusal of a revoked token and a
refusal by the rate limit.  Prints figures; asserts nothing about speed.

usage: bench/bench_consent.py [N]      (N sequential requests per path, default 200)
Run from the top of a built tree (make), e.g. python3 bench/bench_consent.py 200.
"""

import json
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lbtest  # noqa: E402
from lbtest import MOTHER, NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
BASE = {"name": "bench", "consumers": ["newborn"],
        "assurance": {"amr": ["face"], "min_liveness": 900, "min_match": 900},
        "items": [{"item": ITEM, "dept": "nhc", "fields": ["gender", "birth_date"]}]}
POLICIES = {
    "b_open": {"guardian": {"allowed": True, "proofs": [
        {"item": ITEM, "fields": ["mother_id", "father_id"]}]}},
    "b_rate": {"rate_limit": {"per_second": 1, "burst": 1}},
}


def measure(n, fn):
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.95) - 1]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    poldir = tempfile.mkdtemp(prefix="lianban-bench-policies-")
    for bundle, extra in POLICIES.items():
        pol = dict(BASE, bundle=bundle, **extra)
        with open(os.path.join(poldir, bundle + ".json"), "w") as f:
            json.dump(pol, f)
    p = lbtest.Platform(gw_args=["--policies", poldir])
    try:
        def req(tok, bundle, want):
            st, body = p.exchange(NEWBORN, [ITEM], tok, bundle=bundle)
            assert st in (want if isinstance(want, tuple) else (want,)), (st, body)

        def self_ex():
            req(lbtest.issue_independent(p.pki, NEWBORN, [ITEM], bundle="b_open"),
                "b_open", 200)

        def guardian_ex():
            req(lbtest.issue_independent(p.pki, NEWBORN, [ITEM], bundle="b_open",
                                         act=MOTHER, rel="guardian"), "b_open", 200)

        revoked = lbtest.issue_independent(p.pki, NEWBORN, [ITEM], bundle="b_open", ttl=600)
        _, payload, _, _ = lbtest.open_envelope(lbtest.b64d(revoked), "consent")
        jti = payload["jti"]
        st, body = p.request("POST", "/v1/revocations", {"jti": lbtest.b64e(jti)},
                             client="admin-ops")
        assert st == 200, body

        def revoked_ex():
            req(revoked, "b_open", 403)

        def rate_ex():
            # One request a second gets through and fails on its bogus token.
            req("AAAA", "b_rate", (429, 400))

        req(lbtest.issue_independent(p.pki, NEWBORN, [ITEM], bundle="b_rate"), "b_rate", 200)
        calls0 = p.sim_stats()["total"]
        rows = [("self exchange (1 department call)", self_ex),
                ("guardian exchange (proof reused: 1 call)", guardian_ex),
                ("revoked token refused (0 calls)", revoked_ex),
                ("rate limited (0 calls)", rate_ex)]
        print("lianban consent paths, %d sequential requests each, one client, loopback" % n)
        print("%-44s %10s %10s" % ("path", "median ms", "p95 ms"))
        for name, fn in rows:
            med, p95 = measure(n, fn)
            print("%-44s %10.2f %10.2f" % (name, med, p95))
        print("department calls: %d for %d served exchanges"
              % (p.sim_stats()["total"] - calls0, 2 * n))
    finally:
        p.close()
        shutil.rmtree(poldir, ignore_errors=True)


if __name__ == "__main__":
    main()
