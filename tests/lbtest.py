"""Shared harness of the integration tests: a throwaway lianban platform
(demo PKI, department simulator, lianband) on loopback ports chosen by the
kernel, an mTLS client, and independent verifiers of the wire contract
written against python3-msgpack and python3-cryptography only."""

import base64
import fcntl
import glob
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

SRCDIR = os.environ.get("LB_SRCDIR") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILDDIR = os.environ.get("LB_BUILDDIR") or SRCDIR
LIANBAND = os.path.join(BUILDDIR, "gateway", "lianband")
LIANCTL = os.path.join(BUILDDIR, "gateway", "lianctl")
DEPTSIM = os.path.join(BUILDDIR, "adapters", "deptsim")
# A command line prefixed to the daemons, e.g. LB_WRAP="valgrind --leak-check=full
# --errors-for-leak-kinds=definite --error-exitcode=99"; with it (or under ASan)
# Platform.close() fails the test when a daemon reports a memory error.
WRAP = os.environ.get("LB_WRAP", "").split()
MEMCHECK = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:|definitely lost: [1-9]"
                      r"|Invalid (read|write|free)|uninitialised value|Mismatched free")

# The departments of the demo PKI (certs/mkdemo).
DEPARTMENTS = ("psb", "nhc", "mca", "cdc", "nhsa", "hrss", "mnr", "mohurd", "samr", "edu",
               "tax", "hpf", "cdpf")

# Family 1 of adapters/data/families.json
NEWBORN = "110105202601010115"
FATHER = "110105199003151239"
MOTHER = "110105199203041528"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def demo_pki():
    """The demo PKI, made once per build tree (certs/mkdemo is idempotent)."""
    pki = os.path.join(BUILDDIR, "tests", "pki")
    os.makedirs(os.path.dirname(pki), exist_ok=True)
    with open(pki + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # mkdemo also adds the seals that a PKI made by an older mkdemo lacks.
        if not os.path.exists(os.path.join(pki, "journal", "hmac.key")) or \
                not os.path.exists(os.path.join(pki, "seals", "nhc-ed.key")) or \
                not os.path.exists(os.path.join(pki, "gateway-client.key")) or \
                not os.path.exists(os.path.join(pki, "seals", "cdpf.key")) or \
                not os.path.exists(os.path.join(pki, "clients", "consumer-assist.key")) or \
                not os.path.exists(os.path.join(pki, "clients", "gateway-node3.key")):
            subprocess.run([os.path.join(SRCDIR, "certs", "mkdemo"), pki], check=True,
                           stdout=subprocess.DEVNULL)
    return pki


def write_json(directory, name, obj):
    """Writes obj as JSON (UTF-8 kept as is) to directory/name; returns the path."""
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        json.dump(obj, f, ensure_ascii=False)
    return path


def memcheck_problems(tmp):
    """What ASan/UBSan or valgrind said in the daemons' logs, or ''."""
    out = []
    for log in sorted(glob.glob(os.path.join(tmp, "*.log"))):
        with open(log, errors="replace") as f:
            text = f.read()
        if MEMCHECK.search(text):
            out.append("==== %s\n%s" % (os.path.basename(log), text[-6000:]))
    return "\n".join(out)


def stop_process(p, timeout=10):
    """Stops p (SIGTERM, then SIGKILL after timeout seconds) unless it has ended."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def free_ports(n):
    """n distinct loopback ports nothing listens on now (the kernel's picks,
    all bound at once so that none is handed out twice)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port():
    """A loopback port nothing listens on now (the kernel's pick)."""
    return free_ports(1)[0]


def _wait_listening(proc, logpath, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(logpath, errors="replace") as f:
            m = re.search(r"listening on (\S+):(\d+)", f.read())
        if m:
            return int(m.group(2))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(logpath, errors="replace") as f:
        raise RuntimeError("%s did not start:\n%s" % (what, f.read()))


def sim_endpoints(platform):
    """The default endpoint list: every department may reach the simulator's
    address and port, and nothing else."""
    return {d: ["127.0.0.1:%d" % platform.sim_port] for d in DEPARTMENTS}


class Platform:
    """Department simulator + lianband, each on a port the kernel picks.
    endpoints(platform) gives the gateway's endpoint list (--endpoints,
    docs/operations.md) as {dept: [entry, ...]}; by default sim_endpoints."""

    def __init__(self, sim_args=(), gw_args=(), endpoints=sim_endpoints):
        self.pki = demo_pki()
        self.tmp = tempfile.mkdtemp(prefix="lianban-it-")
        self.data = os.path.join(self.tmp, "var")
        self.procs = []
        self.sim_args = list(sim_args)
        self.gw_args = list(gw_args)
        try:
            self.sim_port = self.start_sim()
            self.specs = os.path.join(self.tmp, "specs")
            self.write_specs()
            self.endpoints = os.path.join(self.tmp, "endpoints.json")
            self.write_endpoints(endpoints(self))
            self.port = self.start_gateway()
        except BaseException:
            # Whatever did start must not outlive a platform that failed to start.
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def start_sim(self):
        log = os.path.join(self.tmp, "deptsim.log")
        p = subprocess.Popen(WRAP + [DEPTSIM, "--listen", "127.0.0.1:0",
                              "--data", os.path.join(SRCDIR, "adapters", "data", "families.json")]
                             + self.sim_args, stdout=open(log, "w"), stderr=subprocess.STDOUT)
        self.sim = p
        self.procs.append(p)
        return _wait_listening(p, log, "deptsim")

    def write_specs(self):
        """The demo adapter specs, pointed at this platform's simulator."""
        os.makedirs(self.specs, exist_ok=True)
        for f in glob.glob(os.path.join(SRCDIR, "adapters", "specs", "*.json")):
            with open(f) as src:
                text = src.read().replace("127.0.0.1:8701", "127.0.0.1:%d" % self.sim_port)
            with open(os.path.join(self.specs, os.path.basename(f)), "w") as dst:
                dst.write(text)

    def write_endpoints(self, depts):
        """Writes the gateway's endpoint list; a SIGHUP or a restart applies it."""
        write_json(self.tmp, "endpoints.json", {"departments": depts})

    def start_gateway(self, extra=()):
        self.starts = getattr(self, "starts", 0) + 1
        self.gw_log = os.path.join(self.tmp, "lianband.%d.log" % self.starts)
        p = subprocess.Popen(WRAP + [LIANBAND, "--listen", "127.0.0.1:0", "--data", self.data,
                              "--certs", self.pki, "--policies", os.path.join(SRCDIR, "policies"),
                              "--adapters", self.specs, "--endpoints", self.endpoints]
                             + self.gw_args + list(extra),
                             stdout=open(self.gw_log, "w"), stderr=subprocess.STDOUT)
        self.gw = p
        self.procs.append(p)
        return _wait_listening(p, self.gw_log, "lianband")

    def gw_log_text(self):
        """What the running gateway logged so far."""
        with open(self.gw_log, errors="replace") as f:
            return f.read()

    def sighup(self, expect):
        """Sends SIGHUP and waits until the log holds one more line with expect."""
        n = self.gw_log_text().count(expect)
        self.gw.send_signal(signal.SIGHUP)
        deadline = time.time() + 30
        while self.gw_log_text().count(expect) == n:
            if time.time() > deadline:
                raise AssertionError("no %r after SIGHUP:\n%s"
                                     % (expect, self.gw_log_text()[-3000:]))
            time.sleep(0.05)

    def stop_gateway(self, sig=signal.SIGTERM, timeout=30):
        self.gw.send_signal(sig)
        return self.gw.wait(timeout)

    def close(self):
        for p in self.procs:
            stop_process(p)
        problems = memcheck_problems(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        if problems:
            raise AssertionError("memory errors reported by the daemons:\n" + problems)

    # clients ---------------------------------------------------------------

    def client_files(self, name):
        return (os.path.join(self.pki, "clients", name + ".pem"),
                os.path.join(self.pki, "clients", name + ".key"))

    def request(self, method, path, body=None, client="consumer-newborn", ctype=None,
                accept="application/json", certfile=None, keyfile=None, headers=None):
        ctx = ssl.create_default_context(cafile=os.path.join(self.pki, "client-ca.pem"))
        if client is not None or certfile is not None:
            cf, kf = (certfile, keyfile) if certfile else self.client_files(client)
            ctx.load_cert_chain(cf, kf)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=30)
        headers = dict(headers or {}, Accept=accept)
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                ctype = ctype or "application/json"
            headers["Content-Type"] = ctype or "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if r.getheader("Content-Type", "").startswith("application/msgpack"):
            return r.status, msgpack.unpackb(data, raw=False)
        try:
            return r.status, json.loads(data)
        except ValueError:
            return r.status, data

    def ctl(self, *args, client="consumer-newborn", check=False):
        cf, kf = self.client_files(client)
        return subprocess.run([LIANCTL, "--gateway", "127.0.0.1:%d" % self.port,
                               "--cert", cf, "--key", kf, "--certs", self.pki] + list(args),
                              capture_output=True, text=True, check=check, timeout=60)

    def issue(self, sub, items, azp="newborn", bundle="newborn", authority="faceauth", **kw):
        args = [LIANCTL, "consent", "issue",
                "--authority", os.path.join(self.pki, "authorities", authority + ".key"),
                "--authority-cert", os.path.join(self.pki, "trust", "consent", authority + ".pem"),
                "--sub", sub, "--azp", azp, "--bundle", bundle, "--items", ",".join(items)]
        for k, v in kw.items():
            args += ["--" + k.replace("_", "-"), str(v)]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()

    def exchange(self, sub, items, token, bundle="newborn", client="consumer-newborn"):
        return self.request("POST", "/v1/exchanges", {
            "bundle": bundle,
            "requests": [{"subject": sub, "items": list(items), "consent": token}]},
            client=client)

    def concurrent_exchanges(self, sub, items, tokens, **kw):
        """One exchange per token, each from a thread of its own, all let go
        at once; returns the answers (status, body) in the order of tokens.
        kw goes to exchange (bundle, client)."""
        answers = [None] * len(tokens)
        start = threading.Barrier(len(tokens))

        def run(i):
            start.wait()
            answers[i] = self.exchange(sub, items, tokens[i], **kw)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tokens))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return answers

    def sim_stats(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.sim_port, timeout=10)
        conn.request("GET", "/_stats")
        stats = json.loads(conn.getresponse().read())
        conn.close()
        return stats

    def journal(self):
        """Every record of the journal, decoded, and the raw leaves."""
        status, ck = self.request("GET", "/v1/journal/checkpoint", client="auditor-audit1")
        assert status == 200, ck
        leaves = []
        while len(leaves) < ck["size"]:
            status, r = self.request("GET", "/v1/journal/leaves?start=%d&end=%d"
                                     % (len(leaves), ck["size"]), client="auditor-audit1")
            assert status == 200, r
            leaves += [b64d(x) for x in r["leaves"]]
        return ck, leaves


# Independent verifiers -------------------------------------------------------

def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves):
    """RFC 6962 MTH over leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def root_from_inclusion(leaf, index, size, path):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise ValueError("index beyond size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("path too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("path too short")
    return r


def verify_consistency(first, second, root1, root2, path):
    """RFC 9162 section 2.1.4.2; raises ValueError unless path proves that the
    tree of size first with root1 is a prefix of the tree of size second."""
    if not 0 < first <= second:
        raise ValueError("need 0 < first <= second")
    if first == second:
        if path or root1 != root2:
            raise ValueError("equal sizes need an empty path and equal roots")
        return
    if not path:
        raise ValueError("empty path")
    if first & (first - 1) == 0:
        path = [root1] + list(path)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("path too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("path too short")
    if fr != root1 or sr != root2:
        raise ValueError("path does not lead to both roots")


def canonical(obj):
    """Canonical msgpack per docs/contract.md §3 (maps sorted by key bytes)."""
    def norm(o):
        if isinstance(o, dict):
            return {k: norm(o[k]) for k in sorted(o, key=lambda s: s.encode())}
        if isinstance(o, list):
            return [norm(x) for x in o]
        return o
    return msgpack.packb(norm(obj), use_bin_type=True)


def open_envelope(env_bytes, typ):
    """Decode an envelope and check its canonical form; returns (prot, payload, tbs, sig)."""
    parts = msgpack.unpackb(env_bytes, raw=False)
    assert isinstance(parts, list) and len(parts) == 3, "envelope is not [bin, bin, bin]"
    prot_b, pay_b, sig = parts
    prot = msgpack.unpackb(prot_b, raw=False)
    payload = msgpack.unpackb(pay_b, raw=False)
    assert canonical(prot) == prot_b, "protected header is not canonical"
    assert canonical(payload) == pay_b, "payload is not canonical"
    assert prot["typ"] == typ, prot
    tbs = msgpack.packb(["lianban/1", prot_b, pay_b], use_bin_type=True)
    return prot, payload, tbs, sig


def verify_sig(pub, alg, tbs, sig):
    if alg == "ES256":
        pub.verify(sig, tbs, ec.ECDSA(hashes.SHA256()))
    elif alg == "EdDSA":
        assert isinstance(pub, ed25519.Ed25519PublicKey)
        pub.verify(sig, tbs)
    else:
        raise AssertionError("no independent verifier for " + alg)


def kid_of(cert):
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).digest()


def verify_seal(seal, doc_bytes, seal_root_pem):
    """Checks a seal receipt (as JSON) the way an outsider would (docs/contract.md §6)."""
    claim_b = b64d(seal["claim"])
    claim = msgpack.unpackb(claim_b, raw=False)
    assert canonical(claim) == claim_b, "claim is not canonical"
    assert claim["doc"] == hashlib.sha256(doc_bytes).digest(), "document digest differs"
    prot, payload, tbs, sig = open_envelope(b64d(seal["batch"]), "seal-batch")
    path = [b64d(p) for p in seal["path"]]
    root = root_from_inclusion(leaf_hash(claim_b), seal["index"], payload["size"], path)
    assert root == payload["root"], "Merkle path does not reach the batch root"
    cert = x509.load_der_x509_certificate(prot["x5c"][0])
    assert kid_of(cert) == prot["kid"], "kid does not match the seal certificate"
    verify_sig(cert.public_key(), prot["alg"], tbs, sig)
    with open(seal_root_pem, "rb") as f:
        root_cert = x509.load_pem_x509_certificate(f.read())
    root_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes,
                                  ec.ECDSA(cert.signature_hash_algorithm))
    cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == claim["iss"] == payload["iss"], (cn, claim, payload)
    return claim, payload


def verify_checkpoint(ck, leaves, checkpoint_pem, origin="lianban-demo"):
    """Recomputes the journal root from every leaf and checks the signed checkpoint."""
    prot, payload, tbs, sig = open_envelope(b64d(ck["envelope"]), "checkpoint")
    with open(checkpoint_pem, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    assert prot["kid"] == kid_of(cert)
    verify_sig(cert.public_key(), prot["alg"], tbs, sig)
    assert payload["origin"] == origin
    assert payload["size"] == ck["size"] == len(leaves)
    root = merkle_root([leaf_hash(x) for x in leaves])
    assert payload["root"] == root == b64d(ck["root"]), "journal root mismatch"
    for i, x in enumerate(leaves):
        rec = msgpack.unpackb(x, raw=False)
        assert canonical(rec) == x, "record %d is not canonical" % i
        assert rec["seq"] == i
    return payload


def issue_independent(pki, sub, items, azp="newborn", bundle="newborn", authority="faceauth",
                      aud="lianban-demo", now=None, ttl=300, **claims):
    """A consent token made without any lianban code: python3-msgpack and
    python3-cryptography following docs/contract.md §4 and §5 (ES256 and EdDSA)."""
    with open(os.path.join(pki, "authorities", authority + ".key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(os.path.join(pki, "trust", "consent", authority + ".pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    iss = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    now = int(time.time()) if now is None else now
    payload = {"iss": iss, "aud": aud, "sub": sub, "act": sub, "rel": "self", "azp": azp,
               "bundle": bundle, "items": list(items), "amr": ["face"], "liveness": 990,
               "match": 985, "iat": now, "exp": now + ttl, "jti": os.urandom(16)}
    payload.update(claims)
    alg = "EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256"
    prot_b = canonical({"alg": alg, "kid": kid_of(cert), "typ": "consent"})
    pay_b = canonical(payload)
    tbs = msgpack.packb(["lianban/1", prot_b, pay_b], use_bin_type=True)
    sig = key.sign(tbs) if alg == "EdDSA" else key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return b64e(msgpack.packb([prot_b, pay_b, sig], use_bin_type=True))
