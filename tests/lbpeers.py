"""A cluster of peer lianband nodes (no etcd) on loopback for the integration tests:
nodes node1..nodeN started with --node and --peers, sharing the demo PKI
(each presents clients/gateway-NODE to its peers) and one department
simulator.  Peers need each other's ports before any starts, so the ports
are picked up front."""

import http.client
import os
import re
import shutil
import time

import lbtest


class Node(lbtest.Platform):
    """One node: a Platform whose gateway listens on a fixed port with the
    cluster settings; all but the first reuse the first node's simulator."""

    def __init__(self, cluster, name, port, metrics_port, sim_port=None):
        self.cluster = cluster
        self.name = name
        self.fixed_port = port
        self.metrics_port = metrics_port
        self.shared_sim = sim_port
        super().__init__(gw_args=self.cluster_args())

    def cluster_args(self):
        peers = ",".join("%s=127.0.0.1:%d" % (n, p) for n, p in self.cluster.addresses
                         if n != self.name)
        return ["--listen", "127.0.0.1:%d" % self.fixed_port, "--node", self.name,
                "--peers", peers, "--metrics", "127.0.0.1:%d" % self.metrics_port]

    def start_sim(self):
        if self.shared_sim is None:
            return super().start_sim()
        return self.shared_sim

    def metrics(self):
        """The node's Prometheus exposition text."""
        conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        return text

    def as_node(self, method, path, node):
        """A request with the client certificate of cluster node `node`."""
        cf, kf = gateway_files(self.pki, node)
        return self.request(method, path, certfile=cf, keyfile=kf)


class Cluster:
    """n nodes; node i is self.nodes[i] (named "node%d" % (i + 1))."""

    def __init__(self, n=3):
        ports = lbtest.free_ports(2 * n)
        self.addresses = [("node%d" % (i + 1), ports[i]) for i in range(n)]
        self.nodes = []
        try:
            for i, (name, port) in enumerate(self.addresses):
                sim = self.nodes[0].sim_port if self.nodes else None
                node = Node(self, name, port, ports[n + i], sim)
                self.nodes.append(node)
        except BaseException:
            self.close()
            raise

    def close(self):
        problems = []
        # The simulator belongs to the first node: it closes last.
        for node in reversed(self.nodes):
            try:
                node.close()
            except AssertionError as e:
                problems.append(str(e))
        if problems:
            raise AssertionError("\n".join(problems))

    def restart(self, i, fresh_data=False):
        """Stops node i (if running) and starts it again, on a new data
        directory when fresh_data."""
        node = self.nodes[i]
        if node.gw.poll() is None:
            node.stop_gateway()
        if fresh_data:
            shutil.rmtree(node.data, ignore_errors=True)
        node.port = node.start_gateway()
        return node


def wait_for(what, fn, timeout=60, interval=0.2):
    """Polls fn until it returns a true value; fails naming what after timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def metric(text, name, **labels):
    """The value of one series of a Prometheus text exposition, or 0."""
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    pat = re.compile(r"^%s(\{([^}]*)\})? (\S+)$" % re.escape(name), re.M)
    for m in pat.finditer(text):
        got = ",".join(sorted((m.group(2) or "").split(","))) if m.group(2) else ""
        if got == want:
            return float(m.group(3))
    return 0.0


def gateway_files(pki, node):
    return (os.path.join(pki, "clients", "gateway-%s.pem" % node),
            os.path.join(pki, "clients", "gateway-%s.key" % node))
