#!/usr/bin/env bash
# test_bench_load.sh: a smoke run of the load benchmark (bench/load/run, one
# short round) against a real lianband and deptsim, and nginx when it is
# installed: every report line parses, every run served requests, and
# lianband's one-item, bundle, SM2 and fixed-rate exchanges had no error.
# A short memory soak must sample, serve every segment and give its verdict.
# Then lbload itself must count an exchange answered 200 whose items were not
# all served (a department down) as an error, and show the first one.
# Figures are not checked: the machine is shared.
set -euo pipefail

srcdir=${LB_SRCDIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
builddir=${LB_BUILDDIR:-$srcdir}
python=${PYTHON3:-/usr/bin/python3}
export LB_SRCDIR=$srcdir LB_BUILDDIR=$builddir

for prog in bench/load/lbload bench/load/cryptolimit; do
	if [ ! -x "$builddir/$prog" ]; then
		echo "FAIL: $builddir/$prog is not built (make $prog)"
		exit 1
	fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_bench_load.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
	echo "SKIP (part): nginx is not installed (Debian package nginx); its runs are left out"
fi
cd "$builddir"
if ! "$python" "$srcdir/bench/load/run" --rounds 1 --duration 1 --warmup 0.3 \
	--concurrency 1,4 --crypto-seconds 0.2 --tmpdir "$tmp" --json "$tmp/run.json" \
	>"$tmp/run.out" 2>&1; then
	cat "$tmp/run.out"
	echo "FAIL: bench/load/run failed"
	exit 1
fi
cat "$tmp/run.out"

"$python" - "$tmp/run.json" <<'PY'
import json, sys

doc = json.load(open(sys.argv[1]))
(rd,) = doc["rounds"]
fails = []
runs = []
for kind in ("one", "bundle", "nginx", "deptsim"):
    for c, r in rd[kind].items():
        runs.append(("%s c=%s" % (kind, c), r))
for k in ("sm2", "one_rate", "nginx_rate"):
    if k in rd:
        runs.append((k, rd[k]))
for name, r in runs:
    for field in ("requests", "errors", "rps", "p50_ms", "p99_ms", "p999_ms", "max_ms", "load1"):
        if not isinstance(r.get(field), (int, float)):
            fails.append("%s: no number %s in %r" % (name, field, r))
    if not r.get("rps", 0) > 0:
        fails.append("%s: no request served: %s" % (name, r.get("line")))
    lianband = not name.startswith(("nginx", "deptsim"))
    if lianband and r.get("errors") != 0:
        fails.append("%s: %s errors, first: %s %s" % (name, r.get("errors"),
                     r.get("first_error_status"), r.get("first_error")))
if "sm2" not in rd or "one_rate" not in rd:
    fails.append("the SM2 or fixed-rate run is missing")
cr = rd["crypto"]
if not (cr["es256_verify_per_core"] > 0 and cr["sm2_verify_per_core"] > 0 and
        cr["fdatasync_ms"] > 0):
    fails.append("crypto limit: %r" % cr)
if not doc["summary"].get("ratio: one item max / ES256 crypto limit", {}).get("median"):
    fails.append("the summary has no ratios")
for f in fails:
    print("FAIL:", f)
print("checked %d runs" % len(runs))
sys.exit(1 if fails else 0)
PY

# The memory soak, short: it must sample lianband's RssAnon all along, serve
# every segment (each on connections of its own) without an error and write
# its verdict. Its tolerance is wide: a few seconds are all warm-up.
if ! "$python" "$srcdir/bench/load/soak" --duration 6 --warmup 2 --segment 2 --interval 1 \
	--rate 200 --tolerance 1000 --tmpdir "$tmp" --json "$tmp/soak.json" \
	>"$tmp/soak.out" 2>&1; then
	cat "$tmp/soak.out"
	echo "FAIL: bench/load/soak failed"
	exit 1
fi
cat "$tmp/soak.out"
"$python" - "$tmp/soak.json" <<'PY'
import json, sys

doc = json.load(open(sys.argv[1]))
fails = []
if len(doc["segments"]) < 2:
    fails.append("%d segment(s): the clients never reconnected" % len(doc["segments"]))
if doc["errors"] != 0 or doc["served"] <= 0:
    fails.append("served %r, errors %r" % (doc["served"], doc["errors"]))
if sum(r["requests"] for r in doc["segments"]) != doc["served"]:
    fails.append("the segments do not add up to the total served")
if len(doc["samples"]) < 5 or not all(kib > 0 for _, kib in doc["samples"]):
    fails.append("RssAnon samples: %r" % doc["samples"])
if not (doc["start_kib"] > 0 and doc["end_kib"] > 0 and
        doc["peak_kib"] >= max(doc["start_kib"], doc["end_kib"])):
    fails.append("start, end and peak: %r %r %r" % (doc["start_kib"], doc["end_kib"],
                                                    doc["peak_kib"]))
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PY

# A department down: the bundle's exchanges answer 200 with one item failed,
# which lbload must count as errors; one-item exchanges of a department that is
# up stay clean. Its platform lives under the test's directory too.
TMPDIR=$tmp "$python" - <<'PY'
import os, sys
sys.path.insert(0, os.path.join(os.environ["LB_SRCDIR"], "bench", "load"))
import loadbench as L

P = L.LoadPlatform(sim_args=["--down", "hrss"])
fails = []
try:
    one = L.lbload("down one", P.url(), P.pki, 2, 0.5, 0, kind="one", tokens=1000)
    bundle = L.lbload("down bundle", P.url(), P.pki, 2, 0.5, 0, kind="bundle", tokens=300)
    if one["errors"] != 0 or one["requests"] == 0:
        fails.append("one item with hrss down: %s" % one["line"])
    if bundle["requests"] != 0 or bundle["errors"] == 0:
        fails.append("a bundle with an item not served counted as served: %s" % bundle["line"])
    if bundle["first_error_status"] != 200 or "department_unavailable" not in bundle["first_error"]:
        fails.append("the first error is not the partial answer: %s" % bundle["line"])
finally:
    P.close()
for f in fails:
    print("FAIL:", f)
sys.exit(1 if fails else 0)
PY
echo "PASS"
