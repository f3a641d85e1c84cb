#!/usr/bin/env python3
"""Throughput of lianband with one event loop against several, in the same
run: a short closed-loop client (processes of threads, each thread one
keep-alive mTLS connection) sends as many requests as it can for a few
seconds, round after round, alternating the gateway's --loops.  Two kinds of
request: a one-item newborn exchange with a fresh consent token each (minted
before the timed part), and GET /v1/policies/{bundle} (the loop's own work
only: TLS, routing, the answer).  Prints requests/s per round and the
medians.  The client runs on the same machine and takes its share of the
cores, so the figures are a comparison, not the gateway's limit.

usage: bench/loops.py [--loops 1,2] [--rounds 3] [--seconds 5] [--procs 4]
                      [--threads 8] [--kind exchange,policy]
Run from the top of a built tree (make), e.g. python3 bench/loops.py.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import ssl
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
BUNDLE = "b_open"
POLICY = {"bundle": BUNDLE, "name": "bench", "consumers": ["newborn"],
          "assurance": {"amr": ["face"], "min_liveness": 900, "min_match": 900},
          "items": [{"item": ITEM, "dept": "nhc", "fields": ["gender", "birth_date"]}]}


def client(port, pki, kind, tokens, threads, seconds, out):
    """One client process: threads connections until the deadline; puts its count."""
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "client-ca.pem"))
    ctx.load_cert_chain(os.path.join(pki, "clients", "consumer-newborn.pem"),
                        os.path.join(pki, "clients", "consumer-newborn.key"))
    counts = [0] * threads
    errors = [0] * threads
    start = threading.Barrier(threads)
    deadline = [0.0]

    def run(i):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
        conn.connect()
        mine = tokens[i::threads]
        start.wait()
        if i == 0:
            deadline[0] = time.time() + seconds
        while deadline[0] == 0.0:
            time.sleep(0.001)
        n = 0
        while time.time() < deadline[0]:
            if kind == "exchange":
                if n >= len(mine):
                    break
                body = json.dumps({"bundle": BUNDLE, "requests": [
                    {"subject": NEWBORN, "items": [ITEM], "consent": mine[n]}]}).encode()
                conn.request("POST", "/v1/exchanges", body=body,
                             headers={"Content-Type": "application/json"})
            else:
                conn.request("GET", "/v1/policies/" + BUNDLE)
            r = conn.getresponse()
            r.read()
            if r.status == 200:
                counts[i] += 1
            else:
                errors[i] += 1
            n += 1
        conn.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((sum(counts), sum(errors)))


def thread_cpu(pid, seconds=1.0):
    """The CPU share of each of the gateway's threads over seconds, as top -H
    shows it (from /proc/PID/task/*/stat), busiest first."""
    def snap():
        d = {}
        for t in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
                    st = f.read()
            except OSError:
                continue
            name = st[st.index("(") + 1:st.rindex(")")]
            fields = st[st.rindex(")") + 2:].split()
            d[(t, name)] = int(fields[11]) + int(fields[12])
        return d
    a = snap()
    time.sleep(seconds)
    b = snap()
    hz = os.sysconf("SC_CLK_TCK")
    rows = sorted(((b[k] - a.get(k, 0)) * 100.0 / hz / seconds, k) for k in b)
    return "\n".join("    %-6s %-16s %5.1f%% CPU" % (k[0], k[1], pct)
                     for pct, k in reversed(rows) if pct > 0.5)


def one_round(args, loops, kind, poldir):
    p = lbtest.Platform(gw_args=["--loops", str(loops), "--policies", poldir,
                                 "--client-rate", "1000000", "--client-burst", "1000000"])
    try:
        n = args.procs * args.threads
        per = int(args.seconds * 5000 / args.procs) + 1 if kind == "exchange" else 0
        tokens = [[lbtest.issue_independent(p.pki, NEWBORN, [ITEM], bundle=BUNDLE)
                   for _ in range(per)] for _ in range(args.procs)]
        out = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=client, args=(
            p.port, p.pki, kind, tokens[i], args.threads, args.seconds, out))
            for i in range(args.procs)]
        t0 = time.time()
        for pr in procs:
            pr.start()
        time.sleep(min(2.0, args.seconds / 2))
        top = thread_cpu(p.gw.pid) if args.top else ""
        done = [out.get() for _ in procs]
        for pr in procs:
            pr.join()
        elapsed = max(args.seconds, 1e-3)
        ok = sum(d[0] for d in done)
        bad = sum(d[1] for d in done)
        return ok / elapsed, bad, n, top, time.time() - t0
    finally:
        p.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--loops", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--kind", default="exchange,policy")
    ap.add_argument("--top", action="store_true",
                    help="print the CPU share of the gateway's threads per round")
    args = ap.parse_args()
    poldir = tempfile.mkdtemp(prefix="lianban-bench-loops-")
    with open(os.path.join(poldir, BUNDLE + ".json"), "w") as f:
        json.dump(POLICY, f)
    results = {}
    try:
        for r in range(args.rounds):
            for kind in args.kind.split(","):
                for loops in [int(x) for x in args.loops.split(",")]:
                    rate, bad, conns, top, _ = one_round(args, loops, kind, poldir)
                    results.setdefault((kind, loops), []).append(rate)
                    print("round %d  %-8s loops=%d  %d connections  %8.0f req/s  %d refused"
                          "  load %.2f" % (r + 1, kind, loops, conns, rate, bad,
                                           os.getloadavg()[0]), flush=True)
                    if top:
                        print(top, flush=True)
    finally:
        shutil.rmtree(poldir, ignore_errors=True)
    print("\nmedians")
    for (kind, loops), rates in sorted(results.items()):
        print("  %-8s loops=%d  %8.0f req/s" % (kind, loops, statistics.median(rates)))


if __name__ == "__main__":
    main()
