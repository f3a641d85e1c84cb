#!/usr/bin/env python3
"""Registry benchmark: what does a hot adapter update cost, and does it
disturb the exchanges around it?

Starts the department simulator and lianband on loopback ports the kernel
picks, then, in the same run:

  * registers ROUNDS new versions of the nhc adapter one after the other
    (PUT /v1/adapters/nhc-birth) and prints the median and 90th percentile
    of the answer time: checks, a snapshot built from the files and the
    registry (trust, policies, adapters, seal keys), the journal commit, the
    registry commit and the swap;
  * sends ROUNDS newborn exchanges one after the other, first alone, then
    while a second client registers a new version in a loop, and prints the
    median exchange latency of both and the number of updates that ran
    alongside.  Every exchange must succeed: in-flight exchanges keep the
    snapshot they started with.

    make -s && python3 bench/registry.py [--rounds N]

Not part of "make check": it prints figures and asserts nothing about speed.
"""

import argparse
import copy
import json
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    P = lbtest.Platform()
    try:
        with open(os.path.join(P.specs, "nhc-birth.json")) as f:
            spec = json.load(f)
        n = [0]

        def put():
            n[0] += 1
            s = copy.deepcopy(spec)
            s["description"] = "version %d" % n[0]
            t = time.perf_counter()
            st, ans = P.request("PUT", "/v1/adapters/nhc-birth", s, client="department-nhc")
            assert st == 200, ans
            return time.perf_counter() - t

        puts = [put() for _ in range(args.rounds)]

        def exchange():
            tok = P.issue(NEWBORN, [ITEM])
            t = time.perf_counter()
            st, body = P.exchange(NEWBORN, [ITEM], tok)
            dt = time.perf_counter() - t
            assert st == 200 and body["results"][0]["status"] == "ok", body
            return dt

        alone = [exchange() for _ in range(args.rounds)]
        stop = threading.Event()
        updates = [0]

        def updater():
            while not stop.is_set():
                put()
                updates[0] += 1

        th = threading.Thread(target=updater)
        th.start()
        busy = [exchange() for _ in range(args.rounds)]
        stop.set()
        th.join()
        print("adapter PUT (hot update), %d rounds: median %.1f ms, p90 %.1f ms"
              % (args.rounds, statistics.median(puts) * 1e3, pct(puts, 0.9) * 1e3))
        print("exchange alone:             median %.1f ms, p90 %.1f ms"
              % (statistics.median(alone) * 1e3, pct(alone, 0.9) * 1e3))
        print("exchange during updates:    median %.1f ms, p90 %.1f ms (%d updates "
              "alongside, every exchange ok)"
              % (statistics.median(busy) * 1e3, pct(busy, 0.9) * 1e3, updates[0]))
    finally:
        P.close()


if __name__ == "__main__":
    main()
