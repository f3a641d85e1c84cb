#!/usr/bin/env bash
# test_manpages.sh: the manual pages stay true to the programs.  Every long
# option of "lianband --help" is in lianband(8); every command of "lianctl
# --help", and every option of "lianctl --help" and of each "lianctl COMMAND
# --help", is in lianctl(1); every key of "lianband --print-config" is in
# lianband.conf(5), in the installed example lianband.conf and in the key
# table of docs/operations.md.  The pages are rendered (mandoc, else groff)
# on one long line per paragraph so that no word is broken, and linted by
# mandoc when it is installed.
set -euo pipefail

srcdir=${LB_SRCDIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
builddir=${LB_BUILDDIR:-$srcdir}
lianband=$builddir/gateway/lianband
lianctl=$builddir/gateway/lianctl

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_manpages.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

render() {
	if command -v mandoc >/dev/null; then
		mandoc -Tascii -Owidth=1000 "$1"
	elif command -v groff >/dev/null; then
		groff -mandoc -Tascii -rLL=2000n -P-c -P-b -P-u "$1" 2>/dev/null
	else
		return 77
	fi | sed 's/.\x08//g'
}

fail=0
# in PAGE WHAT WORD...: every WORD is a whole word of the text in PAGE.
in_page() {
	local page=$1 what=$2 w
	shift 2
	for w in "$@"; do
		if ! grep -qE -- "(^|[^-a-z])$(sed 's/[.]/\\./g' <<<"$w")([^-a-z]|\$)" "$page"; then
			echo "FAIL: $what $w is not in $(basename "$page")"
			fail=1
		fi
	done
}

for p in lianband.8 lianctl.1 lianband.conf.5; do
	page=$builddir/man/$p
	[ -f "$page" ] || { echo "FAIL: $page was not built"; exit 1; }
	render "$page" >"$tmp/$p.txt" || { rc=$?; [ "$rc" -eq 77 ] && exit 77; exit "$rc"; }
	if command -v mandoc >/dev/null; then
		if ! mandoc -Tlint -Wwarning "$page" >"$tmp/lint" 2>&1; then
			echo "FAIL: mandoc -Tlint $p:"
			cat "$tmp/lint"
			fail=1
		fi
	fi
done

options() { grep -oE -- '(^|[ ,[(])--[a-z][-a-z]*' | grep -oE -- '--[a-z][-a-z]*' | sort -u; }

# lianband(8): every option of --help.
mapfile -t opts < <("$lianband" --help | options)
[ "${#opts[@]}" -gt 15 ] || { echo "FAIL: lianband --help lists ${#opts[@]} options"; exit 1; }
in_page "$tmp/lianband.8.txt" "lianband option" "${opts[@]}"

# lianctl(1): every command, and every option of every command.
mapfile -t cmds < <("$lianctl" --help |
	sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\( [a-z][a-z]*\)\{0,1\}\).*/\1/p')
[ "${#cmds[@]}" -gt 10 ] || { echo "FAIL: lianctl --help lists ${#cmds[@]} commands"; exit 1; }
in_page "$tmp/lianctl.1.txt" "lianctl command" "${cmds[@]}"
mapfile -t opts < <("$lianctl" --help | options)
in_page "$tmp/lianctl.1.txt" "lianctl option" "${opts[@]}"
for c in "${cmds[@]}"; do
	# shellcheck disable=SC2086
	mapfile -t opts < <("$lianctl" $c --help | options)
	in_page "$tmp/lianctl.1.txt" "lianctl $c option" "${opts[@]}"
done

# lianband.conf(5), the example config and docs/operations.md: every key.
mapfile -t keys < <("$lianband" --print-config | sed -n 's/^\([a-z][-a-z]*\) = .*/\1/p')
[ "${#keys[@]}" -gt 15 ] || { echo "FAIL: --print-config lists ${#keys[@]} keys"; exit 1; }
in_page "$tmp/lianband.conf.5.txt" "key" "${keys[@]}"
in_page "$builddir/etc/lianband.conf" "key" "${keys[@]}"
# The table of docs/operations.md: a row "| `KEY` | ..." for every key.
for k in "${keys[@]}"; do
	grep -q "^| \`$k\`[ |]" "$srcdir/docs/operations.md" ||
		{ echo "FAIL: docs/operations.md has no row for the key $k"; fail=1; }
done
# And no key of the example that lianband does not know.
while read -r k; do
	printf '%s\n' "${keys[@]}" | grep -qx -- "$k" ||
		{ echo "FAIL: lianband.conf names the unknown key $k"; fail=1; }
done < <(sed -n 's/^#\{0,1\}\([a-z][-a-z]*\) = .*/\1/p' "$builddir/etc/lianband.conf")

[ "$fail" -eq 0 ] && echo "the manual pages, the example config and operations.md name every option and key"
exit "$fail"
