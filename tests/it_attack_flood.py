"""Attack: a flood of refused requests must not flood the journal.

A consumer that no bundle policy lists (its certificate is issued here by
the platform CA, CN "mallory") sends requests that are refused before any
consent is read: an unknown bundle, and a bundle that does not list it,
sixteen subjects each.  Each refused request is one journal record, and the
gateway's limit per client (--client-rate, --client-burst) is taken before
anything is journaled: over it the request is answered 429 and only counted,
in one summary record per client and second.  So the flood grows the journal
by at most burst + rate x elapsed records plus a summary a second, whatever
the machine's speed; the bound is computed from the measured time.  Other
consumers keep being served meanwhile."""

import datetime
import http.client
import json
import os
import ssl
import sys
import threading
import time
import unittest

import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
RATE, BURST = 5, 10         # the limit of every client in this test
FLOOD, THREADS = 100, 4     # requests of the flood, sent from this many connections
P = None
MALLORY = None              # (certificate file, key file)


def make_client(pki, directory, role, cn):
    """A client certificate OU=role, CN=cn issued by the platform client CA,
    like certs/mkdemo's; returns (cert path, key path)."""
    with open(os.path.join(pki, "client-ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(pki, "client-ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lianban test"),
                                     x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                                     x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    certfile = os.path.join(directory, "%s-%s.pem" % (role, cn))
    keyfile = os.path.join(directory, "%s-%s.key" % (role, cn))
    with open(certfile, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return certfile, keyfile


def setUpModule():
    global P, MALLORY
    P = lbtest.Platform(gw_args=["--client-rate", str(RATE), "--client-burst", str(BURST)])
    MALLORY = make_client(P.pki, P.tmp, "consumer", "mallory")


def tearDownModule():
    if P is not None:
        P.close()


def size():
    """Records committed, from /v1/health: reading it journals nothing."""
    status, body = P.request("GET", "/v1/health", client=None)
    assert status == 200, body
    return body["journal_size"]


def refused_body(i):
    """Sixteen subjects for an unknown bundle (even i) or one that does not list
    mallory (odd i): refused before any consent is read."""
    return {"bundle": "no_such_bundle" if i % 2 == 0 else "newborn",
            "requests": [{"subject": "1101052026010101%02d" % k, "items": [ITEM],
                          "consent": "AAAA"} for k in range(16)]}


def mallory_records(first):
    """Records from seq first on that name mallory."""
    ck, leaves = P.journal()
    recs = [msgpack.unpackb(x, raw=False) for x in leaves[first:]]
    return [r for r in recs if r.get("consumer") == "mallory"]


class Flood(unittest.TestCase):

    def test_01_a_refused_request_is_one_record(self):
        for i, (status, code) in enumerate(((404, "unknown_bundle"), (403, "forbidden_role"))):
            before = size()
            st, body = P.request("POST", "/v1/exchanges", refused_body(i),
                                 certfile=MALLORY[0], keyfile=MALLORY[1])
            self.assertEqual((st, body["error"]["code"]), (status, code), body)
            self.assertEqual(len(body["results"]), 16, body)
            self.assertEqual(size(), before + 1)
            (r,) = mallory_records(before)
            self.assertEqual((r["kind"], r["decision"], r["code"]), ("deny", "deny", code), r)
            self.assertNotIn("subject", r)   # nothing about a citizen was verified
            self.assertEqual({x["journal_seq"] for x in body["results"]}, {r["seq"]})

    def test_02_a_flood_grows_the_journal_by_its_rate_limit(self):
        first = size()
        answers = []
        lock = threading.Lock()
        go = threading.Barrier(THREADS + 1)

        def run(t):
            ctx = ssl.create_default_context(cafile=os.path.join(P.pki, "client-ca.pem"))
            ctx.load_cert_chain(*MALLORY)
            conn = http.client.HTTPSConnection("127.0.0.1", P.port, context=ctx, timeout=60)
            go.wait()
            for i in range(t, FLOOD, THREADS):
                conn.request("POST", "/v1/exchanges", body=json.dumps(refused_body(i)),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                code = json.loads(r.read())["error"]["code"]
                with lock:
                    answers.append((r.status, code))
            conn.close()

        threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        go.wait()
        t0 = time.monotonic()
        for t in threads:
            t.join(120)
        flood_s = time.monotonic() - t0

        # Other consumers are not affected: newborn is served at once.
        st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
        self.assertEqual(st, 200, body)
        self.assertEqual(body["results"][0]["status"], "ok", body)

        self.assertEqual(len(answers), FLOOD)
        limited = sum(1 for st, code in answers if (st, code) == (429, "rate_limited"))
        admitted = [a for a in answers if a[0] != 429]
        self.assertTrue(set(admitted) <= {(404, "unknown_bundle"), (403, "forbidden_role")},
                        answers)
        # The bucket: at most burst + rate x elapsed requests get through.
        self.assertLessEqual(len(admitted), BURST + RATE * flood_s + 1, (len(admitted), flood_s))
        if FLOOD > BURST + RATE * flood_s + 1:
            self.assertGreater(limited, 0)

        # The refusals over the limit are journaled as counts, once a second;
        # the auditor polls slowly enough to stay within its own limit.
        deadline = time.monotonic() + 60
        while True:
            recs = mallory_records(first)
            summaries = [r for r in recs if r.get("op") == "client_rate"]
            if sum(r["count"] for r in summaries) >= limited or time.monotonic() > deadline:
                break
            time.sleep(1)
        total_s = time.monotonic() - t0
        self.assertEqual(sum(r["count"] for r in summaries), limited, summaries)
        for r in summaries:
            self.assertEqual((r["kind"], r["decision"], r["code"]),
                             ("deny", "deny", "rate_limited"), r)
            self.assertNotIn("subject", r)
        # One record per admitted request, none per refused one ...
        self.assertEqual(len(recs) - len(summaries), len(admitted), recs)
        # ... and at most one summary a second: the journal grew by the limit.
        self.assertLessEqual(len(summaries), total_s + 2, (len(summaries), total_s))
        self.assertLessEqual(len(recs), BURST + RATE * flood_s + total_s + 3,
                             (len(recs), flood_s, total_s))


if __name__ == "__main__":
    unittest.main()
