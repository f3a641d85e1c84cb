#!/bin/sh
# deb_install.sh DEBDIR WORKDIR - installs lianban_*.deb and lianban-sim_*.deb
# from DEBDIR with dpkg into a copy of this machine's root, and runs the
# installed gateway as its lianban user (tests/it_deb.py runs it as root).
#
# The copy is an overlay: this machine's root, read only, under a writable
# WORKDIR/upper, mounted in a mount namespace of its own (unshare -m) so
# that nothing of the machine changes, in a PID namespace of its own
# (unshare -p) so that no process outlives the script.  Inside, dpkg runs
# the real maintainer scripts (adduser, the data directory's owner, the
# unit enabled); then lianban-mkdemo makes a PKI in /etc/lianban/certs,
# deptsim and lianband start from /, lianband as the lianban user, and
# lianctl fetches a sealed certificate, verifies it and the journal.  Every
# step prints a line that begins with "ok: ", or the script stops.
set -eu

if [ "${1:-}" != --inside ]; then
	debdir=$1 work=$2
	# Exit status 77: this machine cannot make the copy (no namespaces, no
	# overlay file system); the test then skips.
	unshare --mount --pid --fork true 2>/dev/null ||
		{ echo "unshare cannot make mount and PID namespaces here"; exit 77; }
	mkdir -p "$work/upper" "$work/work" "$work/root"
	exec unshare --mount --pid --fork --propagation private sh -eu -c '
		root=$3/root
		mount -t overlay overlay -o "lowerdir=/,upperdir=$3/upper,workdir=$3/work" "$root" ||
			{ echo "cannot mount an overlay of / here"; exit 77; }
		mount --rbind /dev "$root/dev"
		mount -t proc proc "$root/proc"
		mount -t tmpfs tmpfs "$root/tmp"
		mount -t tmpfs tmpfs "$root/run"
		mkdir -p "$root/mnt/debs"
		mount --bind "$2" "$root/mnt/debs"
		cp "$1" "$root/tmp/deb_install.sh"
		exec chroot "$root" /bin/sh /tmp/deb_install.sh --inside
	' sh "$0" "$debdir" "$work"
fi

# Inside the copy, as root.
step() { echo "ok: $*"; }
# wait_listening LOG: the port once LOG says "listening on HOST:PORT".
wait_listening() {
	for _ in $(seq 1 300); do
		port=$(sed -n 's/.*listening on [^ ]*:\([0-9][0-9]*\)$/\1/p' "$1" | head -n 1)
		[ -n "$port" ] && { echo "$port"; return 0; }
		sleep 0.05
	done
	cat "$1" >&2
	return 1
}

getent passwd lianban >/dev/null && { echo "the lianban user exists before the install" >&2; exit 1; }
dpkg -i /mnt/debs/lianban_*.deb /mnt/debs/lianban-sim_*.deb >/tmp/dpkg.log 2>&1 ||
	{ cat /tmp/dpkg.log >&2; exit 1; }
[ "$(dpkg-query -W -f '${Status}' lianban)" = "install ok installed" ]
step "dpkg installed lianban and lianban-sim"

getent passwd lianban | grep -q '^lianban:x:[0-9]*:[0-9]*:[^:]*:/var/lib/lianban:/usr/sbin/nologin$'
getent group lianban >/dev/null
step "system user $(getent passwd lianban)"
[ "$(stat -c '%U:%G %a' /var/lib/lianban)" = "lianban:lianban 700" ]
step "/var/lib/lianban lianban:lianban 700"
[ -L /etc/systemd/system/multi-user.target.wants/lianband.service ]
[ -L /etc/systemd/system/lianban.service ]
step "lianband.service enabled, alias lianban.service"

lianban-mkdemo /etc/lianban/certs >/dev/null
chown -R lianban:lianban /etc/lianban/certs
step "lianban-mkdemo made /etc/lianban/certs"

# The simulator on a port of its own; the operator points the adapters and
# the endpoint list at it, as they would at their departments.
cd /
deptsim --listen 127.0.0.1:0 --data /usr/share/lianban/families.json >/tmp/deptsim.log 2>&1 &
simport=$(wait_listening /tmp/deptsim.log)
sed -i "s/127\.0\.0\.1:8701/127.0.0.1:$simport/g" /etc/lianban/adapters/specs/*.json \
	/etc/lianban/endpoints.json
step "deptsim on port $simport"

# As the unit starts it: the installed config, from /; only the port differs.
setpriv --reuid=lianban --regid=lianban --init-groups -- /usr/sbin/lianband \
	--config /etc/lianban/lianband.conf --listen 127.0.0.1:0 >/tmp/lianband.log 2>&1 &
gwpid=$!
port=$(wait_listening /tmp/lianband.log)
grep -q "console: [0-9]* files from /usr/share/lianban/console" /tmp/lianband.log ||
	{ cat /tmp/lianband.log >&2; exit 1; }
[ "$(stat -c %U "/proc/$gwpid")" = lianban ]
step "lianband as the lianban user on port $port"

pki=/etc/lianban/certs
# ctl CLIENT ARGS...: lianctl as the demo client CLIENT.
ctl() {
	client=$1
	shift
	lianctl --gateway "127.0.0.1:$port" --certs "$pki" --cert "$pki/clients/$client.pem" \
		--key "$pki/clients/$client.key" "$@"
}
ctl consumer-newborn health >/tmp/health.json
grep -q '"status": *"ok"' /tmp/health.json
step "health: $(tr -d '\n' </tmp/health.json)"
baby=110105202601010115
item=birth_medical_certificate
lianctl consent issue --authority "$pki/authorities/faceauth.key" \
	--authority-cert "$pki/trust/consent/faceauth.pem" --azp newborn --bundle newborn \
	--sub "$baby" --items "$item" >/tmp/token
ctl consumer-newborn fetch --bundle newborn --quiet --out /tmp/answer.json \
	--subject "$baby" --items "$item" --consent @/tmp/token
lianctl --certs "$pki" seal verify /tmp/answer.json >/tmp/seals.txt
grep -q "^$item.*: seal ok" /tmp/seals.txt || { cat /tmp/seals.txt >&2; exit 1; }
step "an exchange: $(head -n 1 /tmp/seals.txt)"
ctl auditor-audit1 journal verify >/tmp/verify.txt
step "journal verify: $(tail -n 1 /tmp/verify.txt)"

kill -TERM "$gwpid"
wait "$gwpid"
step "lianband stopped, exit status 0"
[ -z "$(find /var/lib/lianban ! -user lianban)" ]
step "everything in /var/lib/lianban is the lianban user's"

dpkg --purge lianban-sim lianban >/tmp/dpkg.log 2>&1 || { cat /tmp/dpkg.log >&2; exit 1; }
[ ! -e /usr/sbin/lianband ] && [ ! -e /etc/lianban/policies ]
[ -n "$(ls /var/lib/lianban)" ]
step "dpkg purged both packages; the journal in /var/lib/lianban stays"
