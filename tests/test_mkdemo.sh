#!/usr/bin/env bash
# test_mkdemo.sh: certs/mkdemo creates the complete demo PKI (docs/contract.md §12), with
# private keys closed to group and others, chains that verify, the right
# client identities, and leaves an existing PKI alone.
set -euo pipefail

srcdir=${LB_SRCDIR:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)}
mkdemo=$srcdir/certs/mkdemo
readonly SM2_ID=1234567812345678
readonly DEPTS=(psb nhc mca cdc nhsa hrss mnr mohurd samr edu tax hpf cdpf)
readonly CLIENTS=(
	department-psb department-nhc department-mca department-cdc department-nhsa
	department-hrss department-mnr department-mohurd department-samr department-edu
	department-tax department-hpf department-cdpf
	consumer-newborn consumer-school consumer-retirement consumer-citizen
	consumer-enterprise consumer-assist
	auditor-audit1 admin-ops
)
readonly AUTHORITIES=(faceauth faceauth-ed faceauth-sm2)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test_mkdemo.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
pki=$tmp/pki

failures=0
fail() {
	printf 'FAIL: %s\n' "$*"
	failures=$((failures + 1))
}

if ! "$mkdemo" "$pki" >"$tmp/out1" 2>&1; then
	cat "$tmp/out1"
	printf 'FAIL: mkdemo exited with an error\n'
	exit 1
fi

files=(client-ca.pem client-ca.key server.pem server.key seal-root.pem seal-root.key
	journal/checkpoint.pem journal/checkpoint.key journal/hmac.key
	departments/ca.pem departments/ca.key departments/server.pem departments/server.key
	gateway-client.pem gateway-client.key)
for c in "${CLIENTS[@]}"; do
	files+=("clients/$c.pem" "clients/$c.key")
done
for a in "${AUTHORITIES[@]}"; do
	files+=("trust/consent/$a.pem" "authorities/$a.key")
done
for d in "${DEPTS[@]}"; do
	files+=("seals/$d.pem" "seals/$d.key" "seals/$d-sm2.pem" "seals/$d-sm2.key"
		"seals/$d-ed.pem" "seals/$d-ed.key")
done
for f in "${files[@]}"; do
	[ -s "$pki/$f" ] || fail "$f is missing or empty"
	case $f in
	*.key)
		mode=$(stat -c %a "$pki/$f" 2>/dev/null || echo none)
		[ "$mode" = 600 ] || fail "$f has mode $mode, want 600"
		;;
	esac
done
if [ "$failures" -gt 0 ]; then
	printf '%d checks failed\n' "$failures"
	exit 1
fi

if ! grep -Eqx '[0-9a-f]{64}' "$pki/journal/hmac.key" ||
	[ "$(wc -c <"$pki/journal/hmac.key")" -ne 65 ]; then
	fail "journal/hmac.key is not 64 lowercase hex characters and a newline"
fi

# x509 FILE OPTION...: openssl x509 output, empty when openssl fails.  Output
# is captured whole rather than piped into grep -q, which under pipefail could
# fail the pipeline by closing it early.
x509() {
	local f=$1
	shift
	openssl x509 -in "$f" -noout "$@" 2>/dev/null || true
}

verify() {
	local ca=$1
	shift
	local out
	if ! out=$(openssl verify -x509_strict -CAfile "$ca" "$@" 2>&1); then
		fail "openssl verify -CAfile ${ca##*/} $*: $out"
	fi
}

verify "$pki/client-ca.pem" -purpose sslserver "$pki/server.pem"
grep -q -- 'DNS:localhost, IP Address:127.0.0.1' <<<"$(x509 "$pki/server.pem" -ext subjectAltName)" ||
	fail "server.pem lacks the SAN DNS:localhost, IP:127.0.0.1"

# Department TLS: the department servers' own CA, and the gateway's client
# identity from the platform CA.
verify "$pki/departments/ca.pem" -purpose sslserver "$pki/departments/server.pem"
grep -q -- 'DNS:localhost, IP Address:127.0.0.1' <<<"$(x509 "$pki/departments/server.pem" -ext subjectAltName)" ||
	fail "departments/server.pem lacks the SAN DNS:localhost, IP:127.0.0.1"
if openssl verify -CAfile "$pki/client-ca.pem" "$pki/departments/server.pem" >/dev/null 2>&1; then
	fail "departments/server.pem is issued by the client CA"
fi
verify "$pki/client-ca.pem" -purpose sslclient "$pki/gateway-client.pem"
info=$(x509 "$pki/gateway-client.pem" -subject -nameopt sep_multiline,sname)
grep -qx "    OU=gateway" <<<"$info" || fail "gateway-client.pem: OU is not gateway"
grep -qx "    CN=lianban-demo" <<<"$info" || fail "gateway-client.pem: CN is not lianban-demo"

pems=()
for c in "${CLIENTS[@]}"; do
	pems+=("$pki/clients/$c.pem")
done
verify "$pki/client-ca.pem" -purpose sslclient "${pems[@]}"
for c in "${CLIENTS[@]}"; do
	info=$(x509 "$pki/clients/$c.pem" -subject -nameopt sep_multiline,sname -ext extendedKeyUsage)
	grep -qx "    OU=${c%%-*}" <<<"$info" || fail "clients/$c.pem: OU is not ${c%%-*}"
	grep -qx "    CN=${c#*-}" <<<"$info" || fail "clients/$c.pem: CN is not ${c#*-}"
	grep -q 'TLS Web Client Authentication' <<<"$info" ||
		fail "clients/$c.pem lacks extendedKeyUsage clientAuth"
done

pems=()
for d in "${DEPTS[@]}"; do
	pems+=("$pki/seals/$d.pem" "$pki/seals/$d-sm2.pem" "$pki/seals/$d-ed.pem")
done
verify "$pki/seal-root.pem" "${pems[@]}"
for d in "${DEPTS[@]}"; do
	grep -q 'ASN1 OID: SM2' <<<"$(x509 "$pki/seals/$d-sm2.pem" -text)" || fail "seals/$d-sm2.pem does not hold an SM2 key"
	grep -q 'Public Key Algorithm: ED25519' <<<"$(x509 "$pki/seals/$d-ed.pem" -text)" ||
		fail "seals/$d-ed.pem does not hold an Ed25519 key"
done

# Each certificate must hold the public half of its private key.
pubkey_matches() {
	local cert=$1 key=$2
	[ "$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" = \
		"$(openssl pkey -in "$key" -pubout 2>/dev/null)" ]
}
for a in "${AUTHORITIES[@]}"; do
	verify "$pki/trust/consent/$a.pem" "$pki/trust/consent/$a.pem"
	pubkey_matches "$pki/trust/consent/$a.pem" "$pki/authorities/$a.key" ||
		fail "authorities/$a.key does not match trust/consent/$a.pem"
done
pubkey_matches "$pki/seals/nhc-sm2.pem" "$pki/seals/nhc-sm2.key" ||
	fail "seals/nhc-sm2.key does not match its certificate"
pubkey_matches "$pki/seals/nhc-ed.pem" "$pki/seals/nhc-ed.key" ||
	fail "seals/nhc-ed.key does not match its certificate"
pubkey_matches "$pki/journal/checkpoint.pem" "$pki/journal/checkpoint.key" ||
	fail "journal/checkpoint.key does not match its certificate"

text=$(x509 "$pki/trust/consent/faceauth-sm2.pem" -text)
grep -q 'ASN1 OID: SM2' <<<"$text" || fail "faceauth-sm2 certificate key is not on the SM2 curve"
grep -q 'Signature Algorithm: SM2-with-SM3' <<<"$text" || fail "faceauth-sm2 is not signed with SM2/SM3"
openssl verify -vfyopt "distid:$SM2_ID" -CAfile "$pki/trust/consent/faceauth-sm2.pem" \
	"$pki/trust/consent/faceauth-sm2.pem" >/dev/null 2>&1 ||
	fail "faceauth-sm2 does not verify with distinguishing ID $SM2_ID"
grep -q 'Public Key Algorithm: ED25519' <<<"$(x509 "$pki/trust/consent/faceauth-ed.pem" -text)" || fail "faceauth-ed key is not Ed25519"
grep -q 'CN=lianban-demo' <<<"$(x509 "$pki/journal/checkpoint.pem" -subject -nameopt sname)" || fail "checkpoint certificate is not CN=lianban-demo"

# The validity window starts in the past: the PKI is usable at once.
openssl x509 -in "$pki/client-ca.pem" -noout -checkend 0 >/dev/null 2>&1 ||
	fail "client-ca.pem is already expired"
openssl verify -attime "$(($(date +%s) - 3600))" -CAfile "$pki/client-ca.pem" \
	"$pki/server.pem" >/dev/null 2>&1 || fail "server.pem is not valid an hour ago"

# A second run leaves the existing PKI alone.
before=$(x509 "$pki/client-ca.pem" -fingerprint -sha256)
if ! "$mkdemo" "$pki" >"$tmp/out2" 2>&1; then
	fail "second mkdemo run failed: $(cat "$tmp/out2")"
fi
after=$(x509 "$pki/client-ca.pem" -fingerprint -sha256)
if [ -z "$before" ] || [ "$before" != "$after" ]; then
	fail "second mkdemo run replaced client-ca.pem"
fi
leftovers=$(find "$pki" -name '.mkdemo.*' | wc -l)
[ "$leftovers" -eq 0 ] || fail "mkdemo left its staging directory behind"

# A PKI made before the EdDSA seals existed gets them from its own seal root;
# everything else stays.
rm -f "$pki"/seals/*-ed.pem "$pki"/seals/*-ed.key
if ! "$mkdemo" "$pki" >"$tmp/out3" 2>&1; then
	fail "mkdemo did not add the missing seals: $(cat "$tmp/out3")"
fi
grep -q "added ${#DEPTS[@]} seals" "$tmp/out3" || fail "mkdemo did not say it added the seals"
[ "$(x509 "$pki/client-ca.pem" -fingerprint -sha256)" = "$before" ] ||
	fail "adding seals replaced client-ca.pem"
verify "$pki/seal-root.pem" "$pki/seals/nhc-ed.pem" "$pki/seals/edu-ed.pem"
pubkey_matches "$pki/seals/nhc-ed.pem" "$pki/seals/nhc-ed.key" ||
	fail "the added seals/nhc-ed.key does not match its certificate"
[ "$(stat -c %a "$pki/seals/nhc-ed.key")" = 600 ] || fail "the added seals/nhc-ed.key is not mode 600"
# Likewise a PKI made before department TLS existed gets its files.
rm -rf "$pki/departments" "$pki"/gateway-client.*
if ! "$mkdemo" "$pki" >"$tmp/out5" 2>&1; then
	fail "mkdemo did not add the department TLS files: $(cat "$tmp/out5")"
fi
grep -q "added the department TLS files" "$tmp/out5" || fail "mkdemo did not say it added the department TLS files"
[ "$(x509 "$pki/client-ca.pem" -fingerprint -sha256)" = "$before" ] ||
	fail "adding department TLS files replaced client-ca.pem"
verify "$pki/departments/ca.pem" -purpose sslserver "$pki/departments/server.pem"
verify "$pki/client-ca.pem" -purpose sslclient "$pki/gateway-client.pem"
pubkey_matches "$pki/gateway-client.pem" "$pki/gateway-client.key" ||
	fail "the added gateway-client.key does not match its certificate"
for f in departments/ca.key departments/server.key gateway-client.key; do
	[ "$(stat -c %a "$pki/$f")" = 600 ] || fail "the added $f is not mode 600"
done
# A PKI made before the enterprise and assistance consumers gets their identities
# from its own client CA.
rm -f "$pki"/clients/consumer-enterprise.* "$pki"/clients/consumer-assist.*
if ! "$mkdemo" "$pki" >"$tmp/out6" 2>&1; then
	fail "mkdemo did not add the missing clients: $(cat "$tmp/out6")"
fi
grep -q "added 2 client identities" "$tmp/out6" || fail "mkdemo did not say it added the clients"
[ "$(x509 "$pki/client-ca.pem" -fingerprint -sha256)" = "$before" ] ||
	fail "adding clients replaced client-ca.pem"
verify "$pki/client-ca.pem" -purpose sslclient "$pki/clients/consumer-assist.pem"
grep -q 'OU=consumer/CN=assist' \
	<<<"$(x509 "$pki/clients/consumer-assist.pem" -subject -nameopt compat)" ||
	fail "the added consumer-assist is not OU=consumer, CN=assist"
[ "$(stat -c %a "$pki/clients/consumer-enterprise.key")" = 600 ] ||
	fail "the added clients/consumer-enterprise.key is not mode 600"
# Anything else missing is still an incomplete PKI.
rm -f "$pki/clients/admin-ops.pem"
if "$mkdemo" "$pki" >"$tmp/out4" 2>&1; then
	fail "mkdemo accepted a PKI that lacks a client certificate"
fi
grep -q "incomplete PKI" "$tmp/out4" || fail "mkdemo did not call the PKI incomplete"

if [ "$failures" -gt 0 ]; then
	printf '%d checks failed\n' "$failures"
	exit 1
fi
printf 'ok: mkdemo created %d files and is idempotent\n' "${#files[@]}"
