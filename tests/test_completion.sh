#!/usr/bin/env bash
# test_completion.sh: the bash completion of lianctl (completion/lianctl.bash)
# completes commands, the options of the command typed (and the global
# ones), and the choices of an option's value, from the lianctl it completes.
set -euo pipefail

srcdir=${LB_SRCDIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
builddir=${LB_BUILDDIR:-$srcdir}
lianctl=$builddir/gateway/lianctl

# shellcheck source=../completion/lianctl.bash
source "$srcdir/completion/lianctl.bash"

fail=0
# complete WORD... : the completions of the last word, sorted, one line.
complete_words() {
	COMP_WORDS=("$lianctl" "$@")
	COMP_CWORD=$#
	_lianctl
	printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'
}
expect() {
	local want=$1 got
	shift
	got=$(complete_words "$@")
	if [[ $got != "$want" ]]; then
		echo "FAIL: lianctl $* <TAB>: \"$got\", want \"$want\""
		fail=1
	else
		echo "ok: lianctl $* <TAB>: $got"
	fi
}
# has WANT WORD... : the completions include every word of WANT.
has() {
	local want=$1 got w
	shift
	got=" $(complete_words "$@") "
	for w in $want; do
		if [[ $got != *" $w "* ]]; then
			echo "FAIL: lianctl $* <TAB> lacks $w: \"$got\""
			fail=1
			return
		fi
	done
	echo "ok: lianctl $* <TAB> has $want"
}
lacks() {
	local not=$1 got
	shift
	got=" $(complete_words "$@") "
	if [[ $got == *" $not "* ]]; then
		echo "FAIL: lianctl $* <TAB> offers $not"
		fail=1
	fi
}

expect "journal" jou
expect "archive checkpoint pull verify" journal ""
expect "verify" journal v
has "access adapter consent fetch health journal policy seal" ""
# The command's own options, and the global ones.
has "--checkpoint --checkpoint-cert --records --json --quiet --gateway --cert --key" \
	journal verify --
lacks "--bundle" journal verify --
expect "--checkpoint --checkpoint-cert" journal verify --check
# Global options and their values before the command are skipped.
expect "verify" --cert x.pem --gateway 127.0.0.1:1 journal ver
expect "--items" --quiet fetch --ite
expect "--predicates" fetch --pred
# An option whose value is one of a few words.
expect "agent guardian legal_rep self" consent issue --sub 1 --rel ""
exit "$fail"
