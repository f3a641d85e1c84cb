"""Harness of the cluster tests (docs/cluster.md): a 3-member etcd cluster,
lianband nodes with --node and --etcd, each with its own data directory but
the one demo PKI and department simulator, and HAProxy in front of them in
TCP mode.  Built on lbtest's Platform: a node is a Platform whose simulator
is the cluster's, so every client helper of lbtest works against a node or
against HAProxy (Cluster.via_haproxy)."""

import copy
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import msgpack

import lbtest

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def start_or_skip(**kw):
    """A Cluster(**kw) for a test module, or unittest's skip when etcd or
    HAProxy are not installed."""
    if missing():
        raise unittest.SkipTest(missing())
    return Cluster(**kw)


def missing():
    """Why the cluster tests cannot run here ('' when they can)."""
    lack = [name for name, path in (("etcd (Debian etcd-server)", ETCD),
                                    ("haproxy", HAPROXY)) if not os.access(path, os.X_OK)]
    return "not installed: " + ", ".join(lack) if lack else ""


def wait_for(what, fn, timeout=30, every=0.05):
    """Polls fn until it returns a true value, which is returned."""
    deadline = time.time() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.time() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(every)


class Etcd:
    """An etcd cluster of n members on loopback, data in tmp."""

    def __init__(self, tmp, n=3):
        self.tmp = tmp
        self.names = ["e%d" % (i + 1) for i in range(n)]
        ports = lbtest.free_ports(2 * n)
        self.client, self.peer = ports[:n], ports[n:]
        self.procs = [None] * n
        self.initial = ",".join("%s=http://127.0.0.1:%d" % (nm, p)
                                for nm, p in zip(self.names, self.peer))
        for i in range(n):
            self.start(i)
        for i in range(n):
            self.wait_healthy(i)

    def urls(self):
        return ",".join("http://127.0.0.1:%d" % p for p in self.client)

    def start(self, i):
        log = open(os.path.join(self.tmp, "etcd-%s.log" % self.names[i]), "a")
        self.procs[i] = subprocess.Popen(
            [ETCD, "--name", self.names[i],
             "--data-dir", os.path.join(self.tmp, "etcd-" + self.names[i]),
             "--listen-client-urls", "http://127.0.0.1:%d" % self.client[i],
             "--advertise-client-urls", "http://127.0.0.1:%d" % self.client[i],
             "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer[i],
             "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % self.peer[i],
             "--initial-cluster", self.initial, "--initial-cluster-state", "new",
             "--initial-cluster-token", "lianban-test",
             "--heartbeat-interval", "100", "--election-timeout", "1000",
             "--logger", "zap", "--log-outputs", "stderr"],
            stdout=log, stderr=subprocess.STDOUT)

    def healthy(self, i):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/health" % self.client[i],
                                        timeout=3) as r:
                return json.loads(r.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def wait_healthy(self, i, timeout=30):
        try:
            wait_for("etcd member %s" % self.names[i], lambda: self.healthy(i), timeout)
        except AssertionError:
            with open(os.path.join(self.tmp, "etcd-%s.log" % self.names[i]),
                      errors="replace") as f:
                print("etcd %s log (end):\n%s" % (self.names[i], f.read()[-4000:]))
            raise

    def leader(self):
        """The index of the member that leads now (asked of the members)."""
        ids = {}
        leader = None
        for i, port in enumerate(self.client):
            try:
                req = urllib.request.Request("http://127.0.0.1:%d/v3/maintenance/status" % port,
                                             b"{}")
                with urllib.request.urlopen(req, timeout=5) as r:
                    st = json.loads(r.read())
            except OSError:
                continue
            ids[st["header"]["member_id"]] = i
            leader = st.get("leader", leader)
        return ids.get(leader)

    def kill(self, i):
        """kill -9 of member i."""
        self.procs[i].kill()
        self.procs[i].wait()

    def count(self, prefix):
        """Keys under prefix, asked of any live member (the JSON gateway)."""
        key = prefix.encode()
        end = key[:-1] + bytes([key[-1] + 1])
        body = json.dumps({"key": lbtest.base64.b64encode(key).decode(),
                           "range_end": lbtest.base64.b64encode(end).decode(),
                           "count_only": True}).encode()
        for port in self.client:
            try:
                req = urllib.request.Request("http://127.0.0.1:%d/v3/kv/range" % port, body)
                with urllib.request.urlopen(req, timeout=5) as r:
                    return int(json.loads(r.read()).get("count", "0"))
            except OSError:
                continue
        raise AssertionError("no etcd member answered")

    def close(self):
        for p in self.procs:
            if p is not None:
                lbtest.stop_process(p)


class Node(lbtest.Platform):
    """One lianband node: lbtest's Platform without a simulator of its own."""

    def __init__(self, cluster, name, port, peers, gw_args=()):
        self.name = name
        self.pki = cluster.pki
        self.tmp = os.path.join(cluster.tmp, name)
        os.makedirs(self.tmp)
        self.data = os.path.join(self.tmp, "var")
        self.procs = []
        self.sim_args = []
        self.sim = cluster.sim
        self.sim_port = cluster.sim_port
        self.metrics_port = lbtest.free_port()
        self.gw_args = ["--node", name, "--etcd", cluster.etcd.urls(), "--peers", peers,
                        "--metrics", "127.0.0.1:%d" % self.metrics_port] + list(gw_args)
        self.specs = os.path.join(self.tmp, "specs")
        self.write_specs()
        self.endpoints = os.path.join(self.tmp, "endpoints.json")
        self.write_endpoints(lbtest.sim_endpoints(self))
        self.port = port
        self.start()

    def start(self):
        """Starts lianband on the node's port (the same one again after a restart)."""
        self.port = self.start_gateway(("--listen", "127.0.0.1:%d" % self.port))

    def kill(self):
        """kill -9 of the node's lianband."""
        self.gw.kill()
        self.gw.wait()

    def ready(self):
        """(status, body) of GET /v1/ready."""
        try:
            return self.request("GET", "/v1/ready", client=None)
        except OSError as e:
            return 0, str(e)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                    timeout=10) as r:
            return r.read().decode()

    def metric(self, name, **labels):
        """The value of one series of the node's metrics (0 when absent)."""
        want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
        for line in self.metrics().splitlines():
            m = re.match(r"^(\w+)(?:\{([^}]*)\})? (\S+)$", line)
            if m and m.group(1) == name and \
                    ",".join(sorted((m.group(2) or "").split(","))) == want:
                return float(m.group(3))
        return 0.0

    def records(self):
        """Every record of the node's journal (read as auditor), decoded."""
        ck, leaves = self.journal()
        return [msgpack.unpackb(x, raw=False) for x in leaves]


class Cluster:
    """etcd x3, the simulator, n lianband nodes and HAProxy; close() stops all."""

    def __init__(self, nodes=3, gw_args=()):
        reason = missing()
        if reason:
            raise RuntimeError(reason)
        self.pki = lbtest.demo_pki()
        # etcd syncs every write: on tmpfs when there is one, so the tests measure
        # lianban rather than the disk; LB_CLUSTER_TMP names another directory.
        base = os.environ.get("LB_CLUSTER_TMP") or (
            "/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        self.tmp = tempfile.mkdtemp(prefix="lianban-cluster-", dir=base)
        self.procs = []
        self.sim_args = []
        self.nodes = []
        self.etcd = None
        self.haproxy = None
        try:
            self.etcd = Etcd(self.tmp)
            self.sim_port = lbtest.Platform.start_sim(self)
            # The nodes witness each other (--peers): their names are those of
            # the demo PKI's node identities, their ports picked up front.
            ports = lbtest.free_ports(nodes)
            names = ["node%d" % (i + 1) for i in range(nodes)]
            for i in range(nodes):
                peers = ",".join("%s=127.0.0.1:%d" % (names[k], ports[k])
                                 for k in range(nodes) if k != i)
                self.nodes.append(Node(self, names[i], ports[i], peers, gw_args))
            for n in self.nodes:
                wait_for("node %s ready" % n.name, lambda n=n: n.ready()[0] == 200)
            self.ha_port = lbtest.free_port()
            self.start_haproxy()
        except BaseException:
            self.close()
            raise

    def haproxy_config(self):
        """The configuration docs/cluster.md shows: TCP mode, TLS passes through
        to lianband (mTLS ends there), servers checked on GET /v1/ready."""
        servers = "".join(
            "    server %s 127.0.0.1:%d check check-ssl verify none\n" % (n.name, n.port)
            for n in self.nodes)
        return ("global\n"
                "    maxconn 2000\n"
                "defaults\n"
                "    mode tcp\n"
                "    timeout connect 2s\n"
                "    timeout client 60s\n"
                "    timeout server 60s\n"
                "    retries 2\n"
                "    option redispatch\n"
                "frontend lianban\n"
                "    bind 127.0.0.1:%d\n"
                "    default_backend lianband\n"
                "backend lianband\n"
                "    balance roundrobin\n"
                "    option httpchk GET /v1/ready\n"
                "    default-server inter 500ms fall 2 rise 2\n"
                "%s" % (self.ha_port, servers))

    def start_haproxy(self):
        cfg = os.path.join(self.tmp, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(self.haproxy_config())
        log = open(os.path.join(self.tmp, "haproxy.log"), "w")
        self.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=log,
                                        stderr=subprocess.STDOUT)
        self.procs.append(self.haproxy)
        via = self.via_haproxy()
        wait_for("HAProxy", lambda: via.ready()[0] == 200)

    def via_haproxy(self):
        """A client of the cluster through HAProxy: lbtest's helpers on its port."""
        v = copy.copy(self.nodes[0])
        v.port = self.ha_port
        v.name = "haproxy"
        return v

    def node_of(self, exch):
        """The nodes whose journal holds the exchange record of exchange id exch."""
        return [n for n in self.nodes if n.gw.poll() is None and any(
            r["kind"] == "exchange" and r.get("exch") == exch for r in n.records())]

    def logs(self):
        out = []
        for root, _, files in os.walk(self.tmp):
            for f in sorted(files):
                if f.endswith(".log") and "etcd" not in f:
                    with open(os.path.join(root, f), errors="replace") as fh:
                        out.append("==== %s\n%s" % (f, fh.read()[-3000:]))
        return "\n".join(out)

    def close(self):
        problems = []
        for n in self.nodes:
            for p in n.procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in n.procs:
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            problems.append(lbtest.memcheck_problems(n.tmp))
        for p in self.procs:
            lbtest.stop_process(p)
        if self.etcd is not None:
            self.etcd.close()
        problems.append(lbtest.memcheck_problems(self.tmp))
        shutil.rmtree(self.tmp, ignore_errors=True)
        problems = [p for p in problems if p]
        if problems:
            raise AssertionError("memory errors reported by the daemons:\n" +
                                 "\n".join(problems))


def exchange_conn(port, pki, body, client="consumer-newborn"):
    """One POST /v1/exchanges on a fresh connection: (status, body); (0, error)
    when the connection failed before an answer."""
    import ssl
    ctx = ssl.create_default_context(cafile=os.path.join(pki, "client-ca.pem"))
    ctx.load_cert_chain(os.path.join(pki, "clients", client + ".pem"),
                        os.path.join(pki, "clients", client + ".key"))
    try:
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=30)
        conn.request("POST", "/v1/exchanges", body=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json",
                              "Accept": "application/json"})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, json.loads(data)
    except (OSError, ValueError, http.client.HTTPException) as e:
        return 0, str(e)
