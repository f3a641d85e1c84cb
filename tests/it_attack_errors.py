"""Integration: every error a client can get is the API's JSON error (issue 10, item 7).

Requests are written by hand over TLS so that they can be what no HTTP library
sends: a body declared over the 1 MiB limit (refused with 413 too_large from
its Content-Length, before any of it is sent, with and without Expect:
100-continue), a chunked body that grows over the limit (refused at the chunk
that crosses it), a malformed request line or header, an unknown or unused
method, a head over 16 KiB, an answer the gateway cannot encode.  Each answer
is application/json with {"error": {"code", "message"}}; the refused
connections are closed, and well-formed requests (chunked ones too, kept-alive
and pipelined ones) still work."""

import json
import os
import socket
import ssl
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import NEWBORN  # noqa: E402

ITEM = "birth_medical_certificate"
MIB = 1024 * 1024
P = None


def setUpModule():
    global P
    P = lbtest.Platform()


def tearDownModule():
    if P is not None:
        P.close()


def connect(client="consumer-newborn"):
    ctx = ssl.create_default_context(cafile=os.path.join(P.pki, "client-ca.pem"))
    if client is not None:
        ctx.load_cert_chain(*P.client_files(client))
    sock = socket.create_connection(("127.0.0.1", P.port), timeout=30)
    return ctx.wrap_socket(sock, server_hostname="localhost")


class Reader:
    """Reads HTTP/1.1 answers, one after the other, from a connection."""

    def __init__(self, conn):
        self.f = conn.makefile("rb")

    def answer(self):
        """(status, headers with lower-case names, body bytes); None at EOF."""
        line = self.f.readline()
        if not line:
            return None
        status = int(line.split()[1])
        headers = {}
        while True:
            line = self.f.readline().strip()
            if not line:
                break
            k, _, v = line.partition(b":")
            headers[k.strip().lower().decode()] = v.strip().decode()
        body = self.f.read(int(headers.get("content-length", "0")))
        return status, headers, body


def exchange_once(data, client="consumer-newborn"):
    """Writes data on a new connection and reads one answer."""
    conn = connect(client)
    try:
        conn.sendall(data)
        return Reader(conn).answer()
    finally:
        conn.close()


class JsonErrors(unittest.TestCase):

    def assertJsonError(self, answer, status, code):
        self.assertIsNotNone(answer, "the connection closed without an answer")
        st, headers, body = answer
        self.assertTrue(headers.get("content-type", "").startswith("application/json"),
                        (st, headers, body[:200]))
        err = json.loads(body)["error"]
        self.assertEqual((st, err["code"]), (status, code), err)
        self.assertGreater(len(err["message"]), 10, err)
        return err, headers

    def assertClosed(self, headers):
        self.assertEqual(headers.get("connection", "").lower(), "close", headers)

    # bodies over the limit ----------------------------------------------

    def test_declared_body_over_limit_is_refused_before_it_is_sent(self):
        # Headers only: the answer must come although no body byte was sent.
        head = ("POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (5 * MIB))
        err, headers = self.assertJsonError(exchange_once(head.encode()), 413, "too_large")
        self.assertIn("1048576", err["message"])
        self.assertClosed(headers)

    def test_declared_body_over_limit_with_expect_continue(self):
        head = ("PUT /v1/policies/newborn HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % (MIB + 1))
        conn = connect("admin-ops")
        try:
            conn.sendall(head.encode())
            answer = Reader(conn).answer()
        finally:
            conn.close()
        # The refusal, not "100 Continue", is the first thing answered.
        self.assertJsonError(answer, 413, "too_large")

    def test_body_at_the_limit_is_read(self):
        # Exactly 1 MiB of JSON reaches the handler, which finds it malformed.
        body = b"[" + b" " * (MIB - 2) + b"x"
        head = ("POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        self.assertJsonError(exchange_once(head.encode() + body), 400, "bad_request")

    def test_chunked_body_over_limit(self):
        # Sixteen chunks of 64 KiB are the limit; the seventeenth size line
        # crosses it, and the refusal comes before its data is sent.
        chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
        data = (b"POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunk * 16 + b"10000\r\n")
        err, headers = self.assertJsonError(exchange_once(data), 413, "too_large")
        self.assertIn("chunked", err["message"])
        self.assertClosed(headers)

    def test_one_huge_chunk(self):
        data = (b"POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFF\r\n")
        self.assertJsonError(exchange_once(data), 413, "too_large")

    # malformed requests -------------------------------------------------

    def test_malformed_request_line(self):
        for line in (b"GARBAGE\r\n\r\n", b"GET /v1/health\r\n\r\n",
                     b"GET /v1/health HTTP/2.0\r\n\r\n", b"GET v1/health HTTP/1.1\r\n\r\n",
                     b"GET /v1/\x01health HTTP/1.1\r\n\r\n", b"GET //[ HTTP/1.1\r\n\r\n"):
            with self.subTest(line=line):
                self.assertJsonError(exchange_once(line), 400, "bad_request")

    def test_malformed_headers(self):
        for hdr in (b"NoColonHere\r\n", b"Bad Name: x\r\n", b" folded: x\r\n",
                    b"X: a\x00b\r\n", b"Content-Length: abc\r\n",
                    b"Content-Length: 5\r\nContent-Length: 6\r\n",
                    b"Transfer-Encoding: gzip\r\n", b"Content-Length: 2\r\nExpect: x\r\n",
                    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"):
            with self.subTest(header=hdr):
                data = b"POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n" + hdr + b"\r\n"
                self.assertJsonError(exchange_once(data), 400, "bad_request")

    def test_bad_chunk_framing(self):
        data = (b"POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
        self.assertJsonError(exchange_once(data), 400, "bad_request")
        data = (b"POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n")
        self.assertJsonError(exchange_once(data), 400, "bad_request")

    def test_head_over_limit(self):
        data = b"GET /v1/policies HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
        err, headers = self.assertJsonError(exchange_once(data), 413, "too_large")
        self.assertClosed(headers)
        # Without its end too: refused once it passed the limit.
        data = b"GET /v1/policies HTTP/1.1\r\nX-Big: " + b"a" * 20000
        self.assertJsonError(exchange_once(data), 413, "too_large")

    # methods and routes ---------------------------------------------------

    def test_unknown_method(self):
        for m in (b"FOO", b"TRACE", b"CONNECT", b"HEAD"):
            with self.subTest(method=m):
                data = m + b" /v1/policies HTTP/1.1\r\nHost: localhost\r\n\r\n"
                self.assertJsonError(exchange_once(data), 405, "method_not_allowed")

    def test_unused_method_on_a_route(self):
        for m in (b"PATCH", b"OPTIONS"):
            with self.subTest(method=m):
                data = m + b" /v1/policies HTTP/1.1\r\nHost: localhost\r\n\r\n"
                err, _ = self.assertJsonError(exchange_once(data), 405, "method_not_allowed")
                self.assertIn("GET", err["message"])

    def test_unknown_route(self):
        data = b"GET /v2/nothing HTTP/1.1\r\nHost: localhost\r\n\r\n"
        self.assertJsonError(exchange_once(data), 404, "not_found")
        self.assertJsonError(exchange_once(data, client=None), 401, "unauthenticated")

    # answers that cannot be encoded -----------------------------------------

    def test_unencodable_answer_is_a_json_error(self):
        # A msgpack subject that is not UTF-8: whether the gateway refuses it
        # (400) or fails to write it into JSON (500), the answer is JSON.
        body = (b"\x82\xa6bundle\xa7newborn\xa8requests\x91\x83\xa7subject\xa2\xff\xfe"
                b"\xa5items\x91\xa1x\xa7consent\xa1y")
        st, ans = P.request("POST", "/v1/exchanges", body=body, ctype="application/msgpack")
        self.assertIsInstance(ans, dict, ans)
        self.assertIn(st, (400, 500), ans)
        self.assertIn(ans["error"]["code"], ("bad_request", "internal_error"), ans)
        if st == 500:
            with open(P.gw_log, errors="replace") as f:
                self.assertIn("could not be encoded", f.read())

    # well-formed requests still work ------------------------------------------

    def test_chunked_exchange(self):
        token = P.issue(NEWBORN, [ITEM])
        body = json.dumps({"bundle": "newborn", "requests": [
            {"subject": NEWBORN, "items": [ITEM], "consent": token}]}).encode()
        chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
                          for i in range(0, len(body), 100))
        data = (b"POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + chunks + b"0\r\nX-Trailer: t\r\n\r\n")
        st, headers, ans = exchange_once(data)
        self.assertEqual(st, 200, ans[:300])
        self.assertEqual(json.loads(ans)["results"][0]["status"], "ok")

    def test_keep_alive_and_pipelining(self):
        conn = connect()
        try:
            r = Reader(conn)
            get = b"GET /v1/policies HTTP/1.1\r\nHost: localhost\r\n\r\n"
            body = b'{"bundle": "nope", "requests": []}'
            post = (b"POST /v1/exchanges HTTP/1.1\r\nHost: localhost\r\n"
                    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (len(body), body))
            conn.sendall(get)
            self.assertEqual(r.answer()[0], 200)
            conn.sendall(post)
            self.assertEqual(r.answer()[0], 400)
            # Three requests in one write, answered in order.
            conn.sendall(get + post + get)
            self.assertEqual([r.answer()[0] for _ in range(3)], [200, 400, 200])
            # Then a refused one: its answer closes the connection.
            conn.sendall(get + b"BAD\r\n\r\n" + get)
            self.assertEqual(r.answer()[0], 200)
            st, headers, _ = r.answer()
            self.assertEqual(st, 400)
            self.assertIsNone(r.answer())
        finally:
            conn.close()

    def test_gateway_still_serves(self):
        st, body = P.request("GET", "/v1/health")
        self.assertEqual((st, body["status"]), (200, "ok"))


if __name__ == "__main__":
    unittest.main()
