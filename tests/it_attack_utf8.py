"""Integration (attack suite): text that is not UTF-8 never gets in.

Every msgpack string from outside is checked when it is decoded, as jansson
checks JSON: a request body (exchange, adapter spec, policy, revocation)
whose text is not UTF-8 is a 400 bad_request and journals nothing; a consent
token or a signed revocation holding such text is malformed; a department's
msgpack answer holding it fails that item with department_bad_response.
Before this check one such request put a record into the journal that JSON
could not show, and every later read including it (records query, lianctl
journal pull, the citizen's access report) failed with 500; here every read
still answers after all of them."""

import http.client
import http.server
import json
import os
import sys
import threading
import time
import unittest

import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN, b64e, canonical, kid_of  # noqa: E402

ITEM = "birth_medical_certificate"
MSGPACK_ITEM = "medical_insurance"      # adapters/specs/nhsa-insurance.json answers msgpack
AUDITOR = "auditor-audit1"

# Byte strings that are not UTF-8 (or hold a NUL, which JSON parsers refuse),
# with a name for the messages of the tests.
BAD = [
    ("a lone byte 0xff", b"\xff"),
    ("a lone continuation byte", b"ab\x80"),
    ("an overlong \"/\"", b"\xc0\xaf"),
    ("a UTF-16 surrogate", b"\xed\xa0\x80"),
    ("a code point above U+10FFFF", b"\xf4\x90\x80\x80"),
    ("a cut euro sign", b"\xe2\x82"),
    ("a NUL", b"a\x00b"),
]
# Long enough to need str8, str16 and str32 headers.
for _n in (40, 300, 70000):
    BAD.append(("%d bytes ending in 0xfe" % _n, b"x" * (_n - 1) + b"\xfe"))

P = None
DEPT = None


class Bad(bytes):
    """A msgpack str whose bytes are these, UTF-8 or not."""


def pack(o):
    """Canonical msgpack (keys sorted by their bytes) of o, in which a Bad
    travels as a str of its own bytes; everything else as msgpack packs it."""
    def head(n, fix, fixmax, codes):
        if n <= fixmax:
            return bytes([fix | n])
        for code, width in codes:
            if n < 1 << (8 * width):
                return bytes([code]) + n.to_bytes(width, "big")
        raise ValueError("too long")

    if isinstance(o, Bad):
        return head(len(o), 0xa0, 31, ((0xd9, 1), (0xda, 2), (0xdb, 4))) + bytes(o)
    if isinstance(o, dict):
        keys = sorted(o, key=lambda k: bytes(k) if isinstance(k, Bad) else k.encode())
        return head(len(o), 0x80, 15, ((0xde, 2), (0xdf, 4))) + \
            b"".join(pack(k) + pack(o[k]) for k in keys)
    if isinstance(o, (list, tuple)):
        return head(len(o), 0x90, 15, ((0xdc, 2), (0xdd, 4))) + b"".join(pack(x) for x in o)
    return msgpack.packb(o, use_bin_type=True)


def sign(payload, typ, authority="faceauth"):
    """An envelope of typ over the payload bytes, signed with the demo
    authority's key by python3-cryptography alone (docs/contract.md §4)."""
    with open(os.path.join(P.pki, "authorities", authority + ".key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    with open(os.path.join(P.pki, "trust", "consent", authority + ".pem"), "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    alg = "EdDSA" if isinstance(key, ed25519.Ed25519PrivateKey) else "ES256"
    prot = canonical({"alg": alg, "kid": kid_of(cert), "typ": typ})
    tbs = msgpack.packb(["lianban/1", prot, payload], use_bin_type=True)
    sig = key.sign(tbs) if alg == "EdDSA" else key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return msgpack.packb([prot, payload, sig], use_bin_type=True)


def token_payload(sub, items, amr, bundle="newborn", azp="newborn"):
    """The payload of a valid self consent token whose "amr" also lists amr."""
    now = int(time.time())
    return pack({"iss": "faceauth", "aud": "lianban-demo", "sub": sub, "act": sub,
                 "rel": "self", "azp": azp, "bundle": bundle, "items": list(items),
                 "amr": ["face", amr], "liveness": 990, "match": 985,
                 "iat": now, "exp": now + 300, "jti": os.urandom(16)})


class BadDepartment:
    """Stands in for the nhsa department: answers what the simulator answers,
    decoded and re-encoded with a string that is not UTF-8 added (mode
    "unused": a field the adapter never reads) or put in place of a mapped
    value (mode "used": the holder's name)."""

    def __init__(self):
        self.mode = "unused"
        self.raw = b"\xff"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                conn = http.client.HTTPConnection("127.0.0.1", P.sim_port, timeout=10)
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = r.read()
                conn.close()
                if r.status == 200:
                    body = outer.spoil(body)
                self.send_response(r.status)
                self.send_header("Content-Type", "application/msgpack")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spoil(self, body):
        answer = msgpack.unpackb(body, raw=False)
        if self.mode == "unused":
            answer["output"]["note"] = Bad(self.raw)
        else:
            answer["output"]["baseinfo"]["psn_name"] = Bad(self.raw)
        return pack(answer)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Platform(lbtest.Platform):
    """The demo platform with nhsa's file adapter pointed at BadDepartment."""

    def write_specs(self):
        super().write_specs()
        path = os.path.join(self.specs, "nhsa-insurance.json")
        with open(path) as f:
            text = f.read().replace("127.0.0.1:%d" % self.sim_port, "127.0.0.1:%d" % DEPT.port)
        with open(path, "w") as f:
            f.write(text)


def setUpModule():
    global P, DEPT
    DEPT = BadDepartment()
    try:
        P = Platform()
    except BaseException:
        DEPT.close()
        raise
    # A granted exchange, so that the reads below have a record to show.
    st, body = P.exchange(NEWBORN, [ITEM], P.issue(NEWBORN, [ITEM]))
    assert st == 200 and body["results"][0]["status"] == "ok", body


def tearDownModule():
    try:
        if P is not None:
            P.close()
    finally:
        DEPT.close()


def journal_size():
    st, body = P.request("GET", "/v1/health", client=None)
    assert st == 200, body
    return body["journal_size"]


def report_token(sub):
    return P.issue(sub, ["access_report"], azp="citizen", bundle="access_report")


class Utf8(unittest.TestCase):

    def assertRefused(self, answer, status, code):
        st, body = answer
        self.assertEqual(st, status, body)
        self.assertIsInstance(body, dict, body)
        self.assertEqual(body["error"]["code"], code, body)

    def assertReadsWork(self):
        """Every JSON read of the journal answers, and every record is shown."""
        after, n = None, 0
        while True:
            q = "/v1/journal/records?limit=1000" + ("&after=%d" % after if after is not None
                                                     else "")
            st, body = P.request("GET", q, client=AUDITOR)
            self.assertEqual(st, 200, body)
            for r in body["records"]:
                self.assertIn("record", r)
                self.assertNotIn("record_error", r)
            n += len(body["records"])
            if body["next"] is None:
                break
            after = body["next"]
        self.assertGreater(n, 0)
        st, body = P.request("GET", "/v1/journal/records?subject=" + NEWBORN, client=AUDITOR,
                             accept="application/msgpack")
        self.assertEqual(st, 200, body)
        r = P.ctl("journal", "pull", client=AUDITOR)
        self.assertEqual(r.returncode, 0, r.stderr)
        for line in r.stdout.splitlines():
            self.assertIn("record", json.loads(line))
        r = P.ctl("journal", "verify", client=AUDITOR)
        self.assertEqual(r.returncode, 0, r.stderr)
        st, body = P.request("GET", "/v1/subjects/me/accesses",
                             client="consumer-citizen",
                             headers={"Lianban-Consent": report_token(NEWBORN)})
        self.assertEqual(st, 200, body)
        self.assertTrue(body["accesses"], body)

    def refused_unjournaled(self, method, path, data, client, code="bad_request"):
        """data (msgpack) is refused with 400 code and leaves the journal as it was."""
        before = journal_size()
        self.assertRefused(P.request(method, path, data, client=client,
                                     ctype="application/msgpack"), 400, code)
        self.assertEqual(journal_size(), before, "a refused request was journaled")

    def test_exchange_fields(self):
        token = P.issue(NEWBORN, [ITEM])

        def body(bundle="newborn", subject=NEWBORN, item=ITEM, consent=token, extra=None):
            req = {"subject": subject, "items": [item], "consent": consent}
            if extra is not None:
                req.update(extra)
            return {"bundle": bundle, "requests": [req]}

        for name, raw in BAD:
            with self.subTest(field="bundle", text=name):
                self.refused_unjournaled("POST", "/v1/exchanges", pack(body(bundle=Bad(raw))),
                                         "consumer-newborn")
        bad = Bad(b"\xff")
        for field, b in (("subject", body(subject=bad)), ("item", body(item=bad)),
                         ("consent", body(consent=bad)), ("a key", body(extra={bad: 1})),
                         ("an unknown field", body(extra={"note": bad}))):
            with self.subTest(field=field):
                self.refused_unjournaled("POST", "/v1/exchanges", pack(b), "consumer-newborn")
        # The token was never used: the same exchange in valid text is served.
        st, answer = P.request("POST", "/v1/exchanges", msgpack.packb(body()),
                               ctype="application/msgpack")
        self.assertEqual(st, 200, answer)
        self.assertReadsWork()

    def test_json_bodies_were_already_checked(self):
        before = journal_size()
        st, body = P.request("POST", "/v1/exchanges", b'{"bundle": "\xff", "requests": []}')
        self.assertEqual((st, body["error"]["code"]), (400, "bad_request"), body)
        self.assertEqual(journal_size(), before)

    def test_adapter_spec(self):
        with open(os.path.join(lbtest.SRCDIR, "adapters", "specs", "psb-idcard.json")) as f:
            spec = json.load(f)
        for field in ("description", "endpoint"):
            with self.subTest(field=field):
                self.refused_unjournaled("PUT", "/v1/adapters/psb-idcard",
                                         pack(dict(spec, **{field: Bad(b"\xe4\xb8")})),
                                         "department-psb")
        st, body = P.request("GET", "/v1/adapters", client="admin-ops")
        self.assertEqual(st, 200, body)
        self.assertReadsWork()

    def test_policy(self):
        with open(os.path.join(lbtest.SRCDIR, "policies", "newborn.json")) as f:
            policy = json.load(f)
        self.refused_unjournaled("PUT", "/v1/policies/newborn",
                                 pack(dict(policy, name=Bad(b"\xed\xa0\x80"))),
                                 "admin-ops")
        st, body = P.request("GET", "/v1/policies/newborn", client="admin-ops")
        self.assertEqual(st, 200, body)
        self.assertReadsWork()

    def test_revocations(self):
        # The admin's own body ...
        self.refused_unjournaled("POST", "/v1/revocations",
                                 pack({"subject": NEWBORN, "bundle": Bad(b"\xff")}),
                                 "admin-ops")
        # ... and an authority's signed envelope, carried by any client.
        env = sign(pack({"subject": NEWBORN, "bundle": Bad(b"\xff"), "iat": int(time.time())}),
                   "revocation")
        self.refused_unjournaled("POST", "/v1/revocations",
                                 msgpack.packb({"revocation": env}, use_bin_type=True),
                                 "consumer-newborn")
        self.assertReadsWork()

    def test_consent_token(self):
        """A token the authority signed, whose text is not UTF-8, is malformed: the
        denial is journaled as every denial is, but nothing of the token is."""
        env = sign(token_payload(NEWBORN, [ITEM], Bad(b"\xc0\xaf")), "consent")
        st, body = P.exchange(NEWBORN, [ITEM], b64e(env))
        self.assertEqual(st, 400, body)
        self.assertEqual(body["results"][0]["status"], "consent_malformed", body)
        # The same token in valid text is accepted (so nothing else refused it).
        env = sign(token_payload(NEWBORN, [ITEM], "pwd"), "consent")
        st, body = P.exchange(NEWBORN, [ITEM], b64e(env))
        self.assertEqual(st, 200, body)
        # The access report's token, in a header.
        env = sign(token_payload(NEWBORN, ["access_report"], Bad(b"\xff"), bundle="access_report",
                                 azp="citizen"), "consent")
        self.assertRefused(P.request("GET", "/v1/subjects/me/accesses", client="consumer-citizen",
                                     headers={"Lianban-Consent": b64e(env)}),
                           400, "consent_malformed")
        self.assertReadsWork()

    def test_department_answer(self):
        token = lambda: P.issue(NEWBORN, [MSGPACK_ITEM])  # noqa: E731
        try:
            for mode in ("unused", "used"):
                for name, raw in BAD[:7]:
                    with self.subTest(mode=mode, text=name):
                        DEPT.mode, DEPT.raw = mode, raw
                        st, body = P.exchange(NEWBORN, [MSGPACK_ITEM], token())
                        self.assertEqual(st, 502, body)
                        r = body["results"][0]
                        self.assertEqual(r["status"], "department_bad_response", r)
                        self.assertNotIn("document", r)
            # The same answer in valid text is served.
            DEPT.mode, DEPT.raw = "unused", "注".encode()
            st, body = P.exchange(NEWBORN, [MSGPACK_ITEM], token())
            self.assertEqual(st, 200, body)
            self.assertEqual(body["results"][0]["status"], "ok", body)
        finally:
            DEPT.mode, DEPT.raw = "unused", b"\xff"
        self.assertReadsWork()


if __name__ == "__main__":
    unittest.main(verbosity=2)
