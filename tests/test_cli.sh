#!/usr/bin/env bash
# test_cli.sh: lianband, lianctl and deptsim answer --help, and refuse a wrong
# command line with exit status 2 and a sentence naming what is wrong,
# before they touch any file.
set -euo pipefail

builddir=${LB_BUILDDIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
lianband=$builddir/gateway/lianband
lianctl=$builddir/gateway/lianctl
deptsim=$builddir/adapters/deptsim

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_cli.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
cd "$tmp"

failures=0
fail() {
	printf 'FAIL: %s\n' "$*"
	failures=$((failures + 1))
}

# expect STATUS PATTERN CMD...: CMD exits with STATUS and prints PATTERN.
expect() {
	local want=$1 pattern=$2 rc=0
	shift 2
	"$@" >out 2>&1 || rc=$?
	[ "$rc" -eq "$want" ] || fail "$* exited $rc, not $want: $(head -c 300 out)"
	grep -q -- "$pattern" out || fail "$* did not say \"$pattern\": $(head -c 300 out)"
}

expect 0 "usage: lianband" "$lianband" --help
expect 0 "usage: lianctl" "$lianctl" --help
expect 0 "usage" "$deptsim" --help

# --version prints the program's name and the package version, and nothing else.
expect 0 "^lianctl [0-9][0-9.]*$" "$lianctl" --version
expect 0 "^lianctl [0-9][0-9.]*$" "$lianctl" health --version
expect 0 "^deptsim [0-9][0-9.]*$" "$deptsim" --version
[ "$("$lianctl" --version | wc -l)" -eq 1 ] || fail "lianctl --version printed more than one line"
[ "$("$lianctl" --version | cut -d' ' -f2)" = "$("$deptsim" --version | cut -d' ' -f2)" ] ||
	fail "lianctl and deptsim report different versions"

expect 2 "--workers must be 1 to 64" "$lianband" --workers 2x
expect 2 "--workers must be 1 to 64" "$lianband" --workers 0
expect 2 "--seal-window must be 0 to 1000 ms" "$lianband" --seal-window -1
expect 2 "--seal-window must be 0 to 1000 ms" "$lianband" --seal-window 5000
expect 2 "--seal-batch must be 1 to 256" "$lianband" --seal-batch ""
expect 2 "usage" "$lianband" --no-such-flag
expect 2 "unknown option --no-such-flag" "$lianctl" health --no-such-flag
expect 2 "no command \"no-such-command\"" "$lianctl" no-such-command

# A refused command line starts nothing and writes nothing.
[ ! -e var ] || fail "a refused command line created ./var"

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all command-line checks passed"

# lianband --version prints its name and the package version, and --help names the flag.
version=$("$lianband" --version) || { echo "FAIL: lianband --version exited $?"; exit 1; }
[[ $version =~ ^lianband\ [0-9]+\.[0-9]+\.[0-9]+$ ]] ||
	{ echo "FAIL: lianband --version said \"$version\""; exit 1; }
[[ $("$lianband" --help) == *--version* ]] ||
	{ echo "FAIL: lianband --help does not name --version"; exit 1; }
echo "lianband --version: $version"
