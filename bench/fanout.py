#!/usr/bin/env python3
"""Fan-out benchmark: does a bundle cost its slowest department, not the sum?

Starts the department simulator with a fixed answer delay for every department
(DELAY ms, one department SLOW ms) and lianband on loopback ports the kernel
picks, then sends one bundle of 12 items across 9 departments (three subjects,
each with its own consent) ROUNDS times, one request after the other.  It
prints the median bundle latency as the consumer sees it (a new TLS
connection, consent checks, fan-out, translation, sealing, journal commit),
the median of the slowest department's own answer time (the same request sent
straight to the simulator after each bundle), and their ratio.  Serial calls
would cost the sum of the delays (about 12 x DELAY); a parallel fan-out costs
about the slowest one.  It also prints the median of each bundle's slowest
item as the gateway journals it (latency_us of the item records), which adds
the time a request waits for a free pooled connection to its endpoint.

Two variants alternate round by round: every department at its own endpoint
(the simulator listens on one port per department, as separate department
hosts would be), and every department behind the simulator's single endpoint
(the demo's set-up, where all departments share the gateway's connection pool
of that endpoint).

    make -s && python3 bench/fanout.py [--rounds N] [--delay MS] [--slow DEPT=MS]

Not part of "make check": it prints figures and asserts nothing about speed.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import ssl
import statistics
import sys
import tempfile
import time

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lbtest  # noqa: E402

DEPTS = ["psb", "nhc", "cdc", "nhsa", "hrss", "edu", "mca", "mnr", "mohurd"]

# adapters/data/families.json: a school-age child and her mother (Shanghai, who
# own their home) and a father who rents (Chengdu).
CHILD = "310104201911200172"
MOTHER = "310104198911092488"
RENTER = "510107198502114590"
GROUPS = [
    (CHILD, ["household_register", "birth_medical_certificate", "vaccination_record",
             "medical_insurance", "social_security_card", "school_place"]),
    (MOTHER, ["resident_id_card", "marriage_certificate", "property_certificate"]),
    (RENTER, ["rental_registration", "medical_insurance", "social_security_card"]),
]
OWNER = {"household_register": "psb", "resident_id_card": "psb",
         "birth_medical_certificate": "nhc", "vaccination_record": "cdc",
         "medical_insurance": "nhsa", "social_security_card": "hrss", "school_place": "edu",
         "marriage_certificate": "mca", "property_certificate": "mnr",
         "rental_registration": "mohurd"}

POLICY = {
    "bundle": "fanout_bench",
    "name": "fan-out benchmark",
    "purpose": "Measure the parallel fan-out over nine departments.",
    "consumers": ["school"],
    "assurance": {"amr": ["face"], "min_liveness": 900, "min_match": 900},
    "guardian": {"allowed": False},
    "items": [{"item": i, "dept": d, "fields": []} for i, d in OWNER.items()],
}


def direct_call_ms(P, dept):
    """One request of dept's first bundle item straight to the simulator."""
    sub, item = next((sub, i) for sub, items in GROUPS for i in items if OWNER[i] == dept)
    for name in sorted(os.listdir(P.specs)):
        with open(os.path.join(P.specs, name)) as f:
            spec = json.load(f)
        if spec["dept"] == dept and item in spec["items"]:
            break
    else:
        raise SystemExit("no adapter spec of %s serves %s" % (dept, item))
    path = "/" + spec["endpoint"].split("/", 3)[3].replace("{subject}", sub)
    conn = http.client.HTTPConnection("127.0.0.1", P.sim_port, timeout=30)
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    r.read()
    dt = (time.perf_counter() - t0) * 1000
    conn.close()
    if r.status != 200:
        raise SystemExit("%s answered %d to %s" % (dept, r.status, path))
    return dt


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=30, help="bundles to send (default 30)")
    ap.add_argument("--delay", type=int, default=100,
                    help="answer delay of every department, ms (default 100)")
    ap.add_argument("--slow", default="mnr=150",
                    help="DEPT=MS: one slower department (default mnr=150)")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured bundles first")
    a = ap.parse_args()
    dept, _, ms = a.slow.partition("=")
    if dept not in DEPTS or not ms.isdigit() or not 1 <= a.rounds <= 10000:
        ap.error("--slow takes DEPT=MS with one of " + ", ".join(DEPTS))
    a.slow_dept, a.slow_ms = dept, int(ms)
    return a


def run(P, a, groups, rounds, warmup):
    """Sends the bundle of groups rounds times; returns the three series in ms."""
    nitems = sum(len(items) for _, items in groups)
    bundle_ms, direct_ms, journaled_ms = [], [], []
    # The client's TLS context is made once, as a consumer service would; each
    # bundle opens its own connection (the TLS handshake is in the figure).
    ctx = ssl.create_default_context(cafile=os.path.join(P.pki, "client-ca.pem"))
    ctx.load_cert_chain(*P.client_files("consumer-school"))
    for n in range(warmup + rounds):
        reqs = [{"subject": sub, "items": items,
                 "consent": lbtest.issue_independent(P.pki, sub, items, azp="school",
                                                     bundle="fanout_bench")}
                for sub, items in groups]
        body = json.dumps({"bundle": "fanout_bench", "requests": reqs}).encode()
        t0 = time.perf_counter()
        conn = http.client.HTTPSConnection("127.0.0.1", P.port, context=ctx, timeout=60)
        conn.request("POST", "/v1/exchanges", body=body,
                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        r = conn.getresponse()
        data = r.read()
        dt = (time.perf_counter() - t0) * 1000
        conn.close()
        st, ans = r.status, json.loads(data)
        if st != 200:
            raise SystemExit("exchange refused: %d %s" % (st, ans))
        bad = [(r["subject"], r["item"], r["status"]) for r in ans["results"]
               if r["status"] != "ok"]
        if bad or len(ans["results"]) != nitems:
            raise SystemExit("items failed: %s" % bad)
        if n < warmup:
            continue
        bundle_ms.append(dt)
        direct_ms.append(direct_call_ms(P, a.slow_dept))
        seqs = [r["journal_seq"] for r in ans["results"]]
        journaled_ms.append(max(item_latency_ms(P, s) for s in seqs))
    return bundle_ms, direct_ms, journaled_ms


def report(a, groups, series):
    bundle_ms, direct_ms, journaled_ms = series
    nitems = sum(len(items) for _, items in groups)
    depts = sorted({OWNER[i] for _, items in groups for i in items})
    delays = {d: (a.slow_ms if d == a.slow_dept else a.delay) for d in depts}
    med_bundle = statistics.median(bundle_ms)
    med_slow = statistics.median(direct_ms)
    med_jour = statistics.median(journaled_ms)
    print("fan-out: %d items across %d departments (%s), %d rounds" %
          (nitems, len(depts), ", ".join(depts), len(bundle_ms)))
    print("  department delay %d ms, %s %d ms; serial calls would take >= %d ms" %
          (a.delay, a.slow_dept, a.slow_ms,
           sum(delays[OWNER[i]] for _, items in groups for i in items)))
    print("  median bundle latency          %8.1f ms  (min %.1f, max %.1f)" %
          (med_bundle, min(bundle_ms), max(bundle_ms)))
    print("  median slowest department call %8.1f ms  (min %.1f, max %.1f; %s, direct)" %
          (med_slow, min(direct_ms), max(direct_ms), a.slow_dept))
    print("  ratio bundle / slowest call    %8.2f" % (med_bundle / med_slow))
    print("  median slowest item, journaled %8.1f ms  (min %.1f, max %.1f; includes waiting "
          "for a pooled connection)" % (med_jour, min(journaled_ms), max(journaled_ms)))


def sim_ports(P):
    """Every port the simulator announced, in --listen order."""
    with open(os.path.join(P.tmp, "deptsim.log")) as f:
        return [int(m) for m in re.findall(r"listening on \S+:(\d+)", f.read())]


def use_endpoints(P, port_of):
    """Points every adapter spec at port_of[dept], reloads the gateway (SIGHUP)
    and waits until the reloaded adapters are in force."""
    want = None
    for name in sorted(os.listdir(P.specs)):
        path = os.path.join(P.specs, name)
        with open(path) as f:
            spec = json.load(f)
        port = port_of[spec["dept"]]
        spec["endpoint"] = re.sub(r"^http://127\.0\.0\.1:\d+/",
                                  "http://127.0.0.1:%d/" % port, spec["endpoint"])
        with open(path, "w") as f:
            json.dump(spec, f, ensure_ascii=False)
        want = (spec["id"], spec["endpoint"])
    P.gw.send_signal(signal.SIGHUP)
    deadline = time.time() + 30
    while time.time() < deadline:
        st, ad = P.request("GET", "/v1/adapters/" + want[0], client="admin-ops")
        if st == 200 and ad["spec"]["endpoint"] == want[1]:
            return
        time.sleep(0.05)
    raise SystemExit("the gateway did not reload its adapters")


def main():
    a = parse_args()
    depts = sorted({OWNER[i] for _, items in GROUPS for i in items})
    # One extra listening port per department: the simulator serves every
    # department on every port, so a port can stand for a department's host.
    sim_args = ["--listen", "127.0.0.1:0"] * len(depts)
    for d in depts:
        sim_args += ["--delay", "%s=%d" % (d, a.slow_ms if d == a.slow_dept else a.delay)]

    policies = tempfile.mkdtemp(prefix="lianban-bench-policies-")
    with open(os.path.join(policies, "fanout_bench.json"), "w") as f:
        json.dump(POLICY, f)
    P = lbtest.Platform(sim_args=sim_args, gw_args=["--policies", policies])
    try:
        ports = sim_ports(P)
        if len(ports) != len(depts) + 1:
            raise SystemExit("the simulator announced %d ports" % len(ports))
        every = ["psb", "nhc", "mca", "cdc", "nhsa", "hrss", "mnr", "mohurd", "samr", "edu"]
        own = {d: ports[1 + depts.index(d)] if d in depts else ports[0] for d in every}
        shared = {d: ports[0] for d in every}
        variants = [
            ("one endpoint per department (departments are separate hosts)", own, ([], [], [])),
            ("all departments behind one endpoint (the demo's single simulator)", shared,
             ([], [], [])),
        ]
        for _, port_of, _ in variants:
            use_endpoints(P, port_of)
            run(P, a, GROUPS, 0, a.warmup)
        # Alternate the variants round by round so that both see the same load.
        for _ in range(a.rounds):
            for _, port_of, acc in variants:
                use_endpoints(P, port_of)
                for series, got in zip(acc, run(P, a, GROUPS, 1, 0)):
                    series.extend(got)
    finally:
        P.close()
        shutil.rmtree(policies, ignore_errors=True)
    for name, _, acc in variants:
        print("== " + name)
        report(a, GROUPS, acc)


_journal_cache = {}


def item_latency_ms(P, seq):
    """latency_us of the item record at seq, fetched in pages and cached."""
    if seq not in _journal_cache:
        st, r = P.request("GET", "/v1/journal/leaves?start=%d&end=%d" % (seq, seq + 64),
                          client="auditor-audit1")
        if st != 200:
            ck = P.request("GET", "/v1/journal/checkpoint", client="auditor-audit1")[1]
            st, r = P.request("GET", "/v1/journal/leaves?start=%d&end=%d"
                              % (seq, ck["size"]), client="auditor-audit1")
        for i, leaf in enumerate(r["leaves"]):
            _journal_cache[seq + i] = msgpack.unpackb(lbtest.b64d(leaf), raw=False)
    rec = _journal_cache[seq]
    if rec.get("kind") != "item" or "latency_us" not in rec:
        raise SystemExit("journal record %d is not an item record with latency_us" % seq)
    return rec["latency_us"] / 1000.0


if __name__ == "__main__":
    main()
