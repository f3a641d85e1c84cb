#!/usr/bin/env python3
"""Load for profiling: many concurrent keep-alive mTLS clients posting exchanges.

Starts the department simulator and lianband on loopback ports the kernel
picks (the demo policies with the newborn bundle's rate limit lifted, and the
per-certificate rate limit lifted), mints one consent token per request
before the timed part (ES256, python3-cryptography), then runs PROCS processes of THREADS client threads, each on one keep-alive
TLS connection with the consumer certificate, posting one-item exchanges (or
the newborn's five items with --bundle) until the tokens run out.  With
--perf FILE it records the daemon with `perf record -g` for the middle of the
run (perf from the Debian package linux-perf).  It prints requests/s, the
status counts, and the CPU time the daemon's event-loop thread (its main
thread) and the whole daemon spent per request (from /proc, so the figure
holds however busy the machine is); it asserts nothing about speed.

    make -s && python3 bench/profile_load.py [--requests N] [--procs P]
        [--threads T] [--bundle] [--perf perf.data]
    perf report -i perf.data --no-children --sort symbol --stdio | head -60
"""

import argparse
import glob
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ONE = ["birth_medical_certificate"]
BUNDLE = ["birth_medical_certificate", "vaccination_record", "household_register",
          "medical_insurance", "social_security_card"]


def client(args):
    port, pki, tokens, items, nthreads = args
    counts = {}
    lock = threading.Lock()

    def run(toks):
        ctx = ssl.create_default_context(cafile=os.path.join(pki, "client-ca.pem"))
        ctx.load_cert_chain(os.path.join(pki, "clients", "consumer-newborn.pem"),
                            os.path.join(pki, "clients", "consumer-newborn.key"))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
        for t in toks:
            body = json.dumps({"bundle": "newborn", "requests": [
                {"subject": NEWBORN, "items": items, "consent": t}]})
            conn.request("POST", "/v1/exchanges", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            with lock:
                counts[r.status] = counts.get(r.status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=run, args=(tokens[i::nthreads],))
               for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts


def cpu_s(pid, tid=None):
    """User plus system CPU seconds of a process, or of one of its threads."""
    path = "/proc/%d/task/%d/stat" % (pid, tid) if tid else "/proc/%d/stat" % pid
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=6000)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--bundle", action="store_true")
    ap.add_argument("--perf")
    ap.add_argument("--perf-seconds", type=int, default=8)
    a = ap.parse_args()
    items = BUNDLE if a.bundle else ONE
    pol = tempfile.mkdtemp(prefix="lianban-load-policies-")
    for f in glob.glob(os.path.join(lbtest.SRCDIR, "policies", "*.json")):
        with open(f) as src:
            p = json.load(src)
        if p.get("bundle") == "newborn":
            p["rate_limit"] = {"per_second": 1000000, "burst": 1000000}
        with open(os.path.join(pol, os.path.basename(f)), "w") as dst:
            json.dump(p, dst, ensure_ascii=False)
    P = lbtest.Platform(gw_args=["--policies", pol, "--client-rate", "1000000",
                                 "--client-burst", "1000000"])
    try:
        toks = [lbtest.issue_independent(P.pki, NEWBORN, items, ttl=600)
                for _ in range(a.requests)]
        per = [toks[i::a.procs] for i in range(a.procs)]
        perf = None
        pid = P.gw.pid
        loop0, all0 = cpu_s(pid, pid), cpu_s(pid)
        with multiprocessing.Pool(a.procs) as pool:
            t0 = time.time()
            res = pool.map_async(client, [(P.port, P.pki, t, items, a.threads) for t in per])
            if a.perf:
                time.sleep(2)
                perf = subprocess.Popen(["perf", "record", "-g", "-o", a.perf, "-p",
                                         str(P.gw.pid), "--", "sleep", str(a.perf_seconds)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            counts = {}
            for c in res.get():
                for k, v in c.items():
                    counts[k] = counts.get(k, 0) + v
            dt = time.time() - t0
        loop1, all1 = cpu_s(pid, pid), cpu_s(pid)
        if perf is not None:
            perf.wait()
        print("%d requests in %.1f s: %.0f req/s, statuses %s, load average %.2f"
              % (a.requests, dt, a.requests / dt, counts, os.getloadavg()[0]))
        print("CPU per request: event loop %.0f us, whole daemon %.0f us"
              % ((loop1 - loop0) * 1e6 / a.requests, (all1 - all0) * 1e6 / a.requests))
    finally:
        P.close()
        shutil.rmtree(pol, ignore_errors=True)


if __name__ == "__main__":
    main()
