#!/usr/bin/env bash
# test_install.sh: "make install" into a temporary root lays out the files of
# docs/operations.md ("Installed files"), and the installed lianband, started
# from / with nothing but --config, serves: a config written here names a PKI
# made by the installed lianban-mkdemo, the installed policies, adapter specs
# and console, and a data directory in the temporary root.  The installed
# lianctl asks it for its health; SIGTERM stops it cleanly.
set -euo pipefail

srcdir=${LB_SRCDIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
builddir=${LB_BUILDDIR:-$srcdir}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_install.XXXXXX")
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

root=$tmp/root
p=/lb		# the prefix, below root
# Every directory is named, so that none depends on how the tree was configured.
dirs=(prefix=$p exec_prefix=$p bindir=$p/bin sbindir=$p/sbin sysconfdir=$p/etc
	localstatedir=$p/var datarootdir=$p/share datadir=$p/share mandir=$p/share/man
	docdir=$p/share/doc/lianban pkgdatadir=$p/share/lianban
	bashcompletiondir=$p/share/bash-completion/completions
	systemdsystemunitdir=$p/lib/systemd/system)
make -s -C "$builddir" install DESTDIR="$root" "${dirs[@]}" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log"; echo "FAIL: make install"; exit 1; }

fail=0
want=(
	sbin/lianband bin/lianctl bin/deptsim bin/lianban-mkdemo
	etc/lianban/lianband.conf etc/lianban/endpoints.json
	etc/lianban/policies/newborn.json etc/lianban/policies/access_report.json
	etc/lianban/adapters/specs/nhc-birth.json etc/lianban/adapters/specs/psb-idcard.json
	share/lianban/console/index.html share/lianban/console/lib/verify.js
	share/lianban/families.json
	share/man/man8/lianband.8 share/man/man1/lianctl.1 share/man/man5/lianband.conf.5
	share/doc/lianban/README.md share/doc/lianban/operations.md
	share/doc/lianban/lianband.conf.example share/doc/lianban/console/search.png
	share/bash-completion/completions/lianctl
)
for f in "${want[@]}"; do
	[ -f "$root$p/$f" ] || { echo "FAIL: make install did not install $p/$f"; fail=1; }
done
for d in etc/lianban/certs var/lib/lianban; do
	[ -d "$root$p/$d" ] || { echo "FAIL: make install did not make $p/$d"; fail=1; }
done
[ "$(stat -c %a "$root$p/var/lib/lianban")" = 700 ] ||
	{ echo "FAIL: the data directory is not mode 700"; fail=1; }
[ -x "$root$p/sbin/lianband" ] && [ ! -e "$root$p/bin/lianband" ] ||
	{ echo "FAIL: lianband belongs in sbin only"; fail=1; }
# Nothing lands outside the prefix.
outside=$(cd "$root" && find . -mindepth 1 -maxdepth 1 ! -name "${p#/}")
[ -z "$outside" ] || { echo "FAIL: installed outside $p: $outside"; fail=1; }
# The installed example config names the installed paths and every key.
grep -q "^policies = $p/etc/lianban/policies$" "$root$p/etc/lianban/lianband.conf" ||
	grep -q "^policies = /.*/lianban/policies$" "$root$p/etc/lianban/lianband.conf" ||
	{ echo "FAIL: the installed lianband.conf names no absolute policies folder"; fail=1; }
# A second install keeps the operator's lianband.conf.
echo "# edited by the operator" >>"$root$p/etc/lianban/lianband.conf"
make -s -C "$builddir" install DESTDIR="$root" "${dirs[@]}" >"$tmp/install2.log" 2>&1 ||
	{ cat "$tmp/install2.log"; echo "FAIL: make install, again"; exit 1; }
grep -q "edited by the operator" "$root$p/etc/lianban/lianband.conf" ||
	{ echo "FAIL: make install overwrote the operator's lianband.conf"; fail=1; }

# An installed lianband's defaults are absolute paths (the binary of the
# build tree keeps the demo's relative ones).
while read -r key val; do
	case $key in data | certs | policies | adapters | endpoints | console)
		[[ $val == /* ]] ||
			{ echo "FAIL: installed default $key = $val is not absolute"; fail=1; } ;;
	esac
done < <(cd / && "$root$p/sbin/lianband" --print-config | sed -n 's/^\([a-z-]*\) = /\1 /p')

# A PKI from the installed lianban-mkdemo, and a config naming the installed files.
"$root$p/bin/lianban-mkdemo" "$tmp/pki" >"$tmp/mkdemo.log" 2>&1 ||
	{ cat "$tmp/mkdemo.log"; echo "FAIL: lianban-mkdemo"; exit 1; }
etc=$root$p/etc/lianban
cat >"$tmp/lianband.conf" <<EOF
# written by test_install.sh
listen = 127.0.0.1:0
data = $tmp/var
certs = $tmp/pki
policies = $etc/policies
adapters = $etc/adapters/specs
endpoints = $etc/endpoints.json
console = $root$p/share/lianban/console
EOF
(cd / && exec "$root$p/sbin/lianband" --config "$tmp/lianband.conf") >"$tmp/lianband.log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1 300); do
	port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$tmp/lianband.log")
	[ -n "$port" ] && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$port" ]; then
	cat "$tmp/lianband.log"
	echo "FAIL: the installed lianband did not start"
	exit 1
fi
health=$("$root$p/bin/lianctl" --gateway "127.0.0.1:$port" --certs "$tmp/pki" health) ||
	{ echo "FAIL: lianctl health: $health"; fail=1; }
[[ $health == *'"status"'* ]] || { echo "FAIL: health answered $health"; fail=1; }
grep -q "console: [0-9]* files from $root$p/share/lianban/console" "$tmp/lianband.log" ||
	{ echo "FAIL: the installed console was not loaded"; cat "$tmp/lianband.log"; fail=1; }
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
pid=""
[ "$rc" -eq 0 ] || { echo "FAIL: lianband exited $rc on SIGTERM"; cat "$tmp/lianband.log"; fail=1; }
[ -f "$tmp/var/data.mdb" ] || { echo "FAIL: no journal in the data directory"; fail=1; }

[ "$fail" -eq 0 ] && echo "installed layout and the installed lianband work"
exit "$fail"
