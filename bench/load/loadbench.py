"""What bench/load/run, bench/load/soak and tests/test_bench_load.sh share:
the platform under load (department simulator and lianband, from
tests/lbtest.py, with the rate limits lifted), nginx as an mTLS reverse proxy
to the same simulator, and running lbload and cryptolimit.

The build tree is $LB_BUILDDIR, else the working directory when it holds
gateway/lianband, else the source tree."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("LB_SRCDIR") or os.path.dirname(os.path.dirname(HERE))
if not os.environ.get("LB_BUILDDIR"):
    os.environ["LB_BUILDDIR"] = os.getcwd() if os.path.exists(
        os.path.join(os.getcwd(), "gateway", "lianband")) else SRCDIR
os.environ["LB_SRCDIR"] = SRCDIR
BUILDDIR = os.environ["LB_BUILDDIR"]
sys.path.insert(0, os.path.join(SRCDIR, "tests"))
import lbtest  # noqa: E402

LBLOAD = os.path.join(BUILDDIR, "bench", "load", "lbload")
CRYPTOLIMIT = os.path.join(BUILDDIR, "bench", "load", "cryptolimit")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

# The five items of the whole newborn bundle (lbload --kind bundle asks them).
BUNDLE_ITEMS = 5


def birth_path(specs):
    """The path and query the newborn's birth certificate adapter asks the
    simulator, so nginx and the simulator alone serve the same payload."""
    with open(os.path.join(specs, "nhc-birth.json")) as f:
        endpoint = json.load(f)["endpoint"]
    return "/" + endpoint.split("/", 3)[3].replace("{subject}", lbtest.NEWBORN)


class LoadPlatform(lbtest.Platform):
    """The demo platform for load: the per-client (--client-rate) and the
    newborn bundle's per-consumer rate limits raised to 1,000,000/s, since they
    exist to stop one consumer from flooding the gateway and would otherwise be
    what is measured.  alg "sm2" seals every item with the departments' SM2
    seals.  Everything else keeps its default (the journal fsyncs each commit);
    the data directory is under the temporary directory, which must be on disk."""

    def __init__(self, alg="es256", gw_args=(), sim_args=()):
        self.alg = alg
        super().__init__(sim_args=sim_args, gw_args=["--client-rate", "1000000", "--client-burst", "1000000"]
                         + list(gw_args))

    def write_specs(self):
        super().write_specs()
        if self.alg != "sm2":
            return
        for name in os.listdir(self.specs):
            with open(os.path.join(self.specs, name)) as f:
                spec = json.load(f)
            spec["seal"] += "-sm2"
            lbtest.write_json(self.specs, name, spec)

    def start_gateway(self, extra=()):
        policies = os.path.join(self.tmp, "policies")
        os.makedirs(policies, exist_ok=True)
        for name in os.listdir(os.path.join(SRCDIR, "policies")):
            with open(os.path.join(SRCDIR, "policies", name)) as f:
                pol = json.load(f)
            if "rate_limit" in pol:
                pol["rate_limit"] = {"per_second": 1000000, "burst": 1000000}
            lbtest.write_json(policies, name, pol)
        return super().start_gateway(["--policies", policies] + list(extra))

    def url(self):
        return "https://127.0.0.1:%d/v1/exchanges" % self.port

    def rss_anon_kib(self):
        """lianband's anonymous resident memory (RssAnon: the heap, not the
        LMDB map, which is file-backed), in KiB."""
        with open("/proc/%d/status" % self.gw.pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        raise RuntimeError("no RssAnon in /proc/%d/status" % self.gw.pid)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NGINX_CONF = """\
worker_processes auto;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream deptsim {{
        server 127.0.0.1:{sim_port};
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {pki}/server.pem;
        ssl_certificate_key {pki}/server.key;
        ssl_client_certificate {pki}/client-ca.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{
            proxy_pass http://deptsim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


class Nginx:
    """nginx as a TLS reverse proxy that verifies client certificates against
    the demo client CA, with keep-alive connections to the simulator: run as
    the user's own process, with its own prefix and configuration in a
    temporary directory, on a free loopback port."""

    def __init__(self, tmp, sim_port, pki):
        self.tmp = os.path.join(tmp, "nginx")
        os.makedirs(self.tmp)
        self.port = free_port()
        conf = os.path.join(self.tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=self.tmp, sim_port=sim_port, port=self.port, pki=pki))
        self.log = os.path.join(self.tmp, "nginx.out")
        self.proc = subprocess.Popen([NGINX, "-p", self.tmp, "-c", conf, "-e",
                                      os.path.join(self.tmp, "error.log")],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        with open(self.log) as f, open(os.path.join(self.tmp, "error.log")) as e:
            raise RuntimeError("nginx did not start:\n" + f.read() + e.read())

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def client_args(pki):
    return ["--cert", os.path.join(pki, "clients", "consumer-newborn.pem"),
            "--key", os.path.join(pki, "clients", "consumer-newborn.key"),
            "--ca", os.path.join(pki, "client-ca.pem")]


def lbload(label, url, pki, conns, duration, warmup, kind="generic", rate=0, tokens=0,
           alg="es256", tls=True, echo=True):
    """Runs lbload once; returns its report (dict) with "line", the human line.
    When the minted tokens ran out before the end, runs again with three times
    as many (twice at most) so that the figure covers the whole duration."""
    for _ in range(3):
        args = [LBLOAD, "--url", url, "--kind", kind, "--connections", str(conns),
                "--duration", str(duration), "--warmup", str(warmup), "--label", label,
                "--certs", pki, "--alg", alg]
        if tls:
            args += client_args(pki)
        if rate:
            args += ["--rate", "%.1f" % rate]
        if kind != "generic":
            args += ["--tokens", str(int(tokens))]
        out = subprocess.run(args, capture_output=True, text=True,
                             timeout=duration * 3 + warmup + 600)
        report = None
        lines = []
        for line in out.stdout.splitlines():
            if line.startswith("{"):
                report = json.loads(line)
            else:
                lines.append(line)
        if report is None:
            raise RuntimeError("lbload %s failed (exit %d):\n%s%s" % (label, out.returncode,
                                                                    out.stdout, out.stderr))
        report["line"] = "\n".join(lines)
        if not report["tokens_exhausted"]:
            break
        tokens *= 3
    if echo:
        print(report["line"], flush=True)
    return report


def tokens_for(rps, duration, warmup):
    """Tokens for a closed-loop run expected to reach about rps: half again
    as many as it would use, so that they rarely run out."""
    return int(max(rps, 200) * (duration + warmup) * 1.5) + 500


def cryptolimit(seconds, fsync_dir):
    out = subprocess.run([CRYPTOLIMIT, "--seconds", str(seconds), "--fsync-dir", fsync_dir],
                         capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def scratch(base):
    """A temporary directory on base's file system; lbtest.Platform makes its
    own under it too (tempfile.tempdir)."""
    tempfile.tempdir = base
    return tempfile.mkdtemp(prefix="lianban-load-")
