"""Integration: the live answers of every route validate against docs/openapi.yaml.

Each route of the API is called on a running gateway, for its success and for
error answers, and every JSON answer is validated (python3-jsonschema, JSON
Schema 2020-12 as OpenAPI 3.1 uses it) against the schema the document gives
for that path, method and status; a status the document does not list for the
operation fails the test."""

import base64
import json
import os
import sys
import unittest

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402

ITEM = "birth_medical_certificate"
P = None
DOC = None
SEEN = set()


def setUpModule():
    global P, DOC
    with open(os.path.join(lbtest.SRCDIR, "docs", "openapi.yaml")) as f:
        DOC = yaml.safe_load(f)
    P = lbtest.Platform()


def tearDownModule():
    if P is not None:
        P.close()


def deref(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = DOC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


def response_schema(template, method, status):
    op = DOC["paths"][template][method.lower()]
    responses = op["responses"]
    for key in (str(status), "%dXX" % (status // 100), "default"):
        if key in responses:
            resp = deref(responses[key])
            content = resp.get("content", {})
            if "application/json" not in content:
                return None
            return content["application/json"]["schema"]
    raise AssertionError("%s %s: status %d is not in docs/openapi.yaml" % (method, template, status))


class Api(unittest.TestCase):

    def call(self, template, method, path, expect, **kw):
        st, body = P.request(method, path, **kw)
        self.assertEqual(st, expect, (method, path, body))
        schema = response_schema(template, method, st)
        if schema is not None:
            # The document is the root, so that its "#/components/..." references resolve.
            jsonschema.Draft202012Validator(dict(DOC, **schema)).validate(body)
        SEEN.add((template, method.lower()))
        return body

    def test_01_health(self):
        self.call("/v1/health", "GET", "/v1/health", 200, client=None)
        self.call("/v1/ready", "GET", "/v1/ready", 200, client=None)

    def test_02_exchanges(self):
        tok = P.issue(lbtest.NEWBORN, [ITEM])
        body = self.call("/v1/exchanges", "POST", "/v1/exchanges", 200, body={
            "bundle": "newborn", "requests": [{"subject": lbtest.NEWBORN, "items": [ITEM],
                                               "consent": tok}]})
        self.assertEqual(body["results"][0]["status"], "ok")
        tok = P.issue(lbtest.NEWBORN, [ITEM])
        self.call("/v1/exchanges", "POST", "/v1/exchanges", 403, body={
            "bundle": "newborn", "requests": [{"subject": lbtest.FATHER, "items": [ITEM],
                                               "consent": tok}]})
        self.call("/v1/exchanges", "POST", "/v1/exchanges", 400, body={"bundle": 1})
        self.call("/v1/exchanges", "POST", "/v1/exchanges", 404, body={
            "bundle": "nope", "requests": [{"subject": lbtest.NEWBORN, "items": [ITEM],
                                            "consent": tok}]})
        self.call("/v1/exchanges", "POST", "/v1/exchanges", 401, body={}, client=None)
        self.call("/v1/exchanges", "POST", "/v1/exchanges", 403, body={},
                  client="auditor-audit1")

    def test_02_verifications(self):
        pred = [{"item": "household_register", "field": "district", "op": "in",
                 "value": ["310104"]}]
        child, father = "310104201911200172", "310104198707223153"
        tok = P.issue(child, ["household_register"], azp="school", bundle="school_enrollment",
                      act=father, rel="guardian")
        school = {"client": "consumer-school"}
        body = self.call("/v1/verifications", "POST", "/v1/verifications", 200, body={
            "bundle": "school_enrollment", "requests": [{"subject": child, "predicates": pred,
                                                         "consent": tok}]}, **school)
        self.assertIs(body["results"][0]["result"], True)
        tok = P.issue(child, ["household_register"], azp="school", bundle="school_enrollment",
                      act=father, rel="guardian")
        pred[0].update(op="ne", value="310104")
        body = self.call("/v1/verifications", "POST", "/v1/verifications", 403, body={
            "bundle": "school_enrollment", "requests": [{"subject": child, "predicates": pred,
                                                         "consent": tok}]}, **school)
        self.assertEqual(body["error"]["code"], "predicate_not_allowed")
        self.call("/v1/verifications", "POST", "/v1/verifications", 400,
                  body={"bundle": "school_enrollment", "requests": [{"subject": child}]},
                  **school)
        self.call("/v1/verifications", "POST", "/v1/verifications", 403, body={},
                  client="auditor-audit1")

    def test_03_revocations(self):
        jti = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        self.call("/v1/revocations", "POST", "/v1/revocations", 200, body={"jti": jti},
                  client="admin-ops")
        self.call("/v1/revocations", "POST", "/v1/revocations", 403, body={"jti": jti})
        self.call("/v1/revocations", "POST", "/v1/revocations", 400, body={"x": 1},
                  client="admin-ops")

    def test_04_journal(self):
        a = {"client": "auditor-audit1"}
        self.call("/v1/journal/checkpoint", "GET", "/v1/journal/checkpoint", 200, **a)
        self.call("/v1/journal/checkpoint", "GET", "/v1/journal/checkpoint?max_size=0", 200, **a)
        self.call("/v1/journal/checkpoint", "GET", "/v1/journal/checkpoint?max_size=x", 400, **a)
        self.call("/v1/journal/leaves", "GET", "/v1/journal/leaves?start=0&end=2", 200, **a)
        self.call("/v1/journal/records", "GET", "/v1/journal/records?limit=5", 200, **a)
        self.call("/v1/journal/records", "GET", "/v1/journal/records?subject=" + lbtest.NEWBORN,
                  200, **a)
        self.call("/v1/journal/records", "GET", "/v1/journal/records?limit=0", 400, **a)
        self.call("/v1/journal/proof/inclusion", "GET",
                  "/v1/journal/proof/inclusion?seq=0&size=2", 200, **a)
        self.call("/v1/journal/proof/inclusion", "GET", "/v1/journal/proof/inclusion", 400, **a)
        self.call("/v1/journal/proof/consistency", "GET",
                  "/v1/journal/proof/consistency?first=1&second=2", 200, **a)
        self.call("/v1/journal/certificate", "GET", "/v1/journal/certificate", 200, **a)
        self.call("/v1/journal/checkpoint", "GET", "/v1/journal/checkpoint", 403)

    def test_05_access_report(self):
        self.call("/v1/subjects/me/accesses", "GET", "/v1/subjects/me/accesses", 401,
                  client="consumer-citizen")
        tok = P.issue(lbtest.NEWBORN, ["access_report"], azp="citizen", bundle="access_report")
        raw = base64.urlsafe_b64encode(base64.b64decode(tok + "=" * (-len(tok) % 4),
                                                        altchars=b"-_")).rstrip(b"=").decode()
        self.call("/v1/subjects/me/accesses", "GET", "/v1/subjects/me/accesses", 200,
                  client="consumer-citizen", headers={"Lianban-Consent": raw})

    def test_06_ops_and_console(self):
        self.call("/v1/ops/summary", "GET", "/v1/ops/summary", 200, client="admin-ops")
        self.call("/v1/ops/summary", "GET", "/v1/ops/summary?hours=99", 400, client="admin-ops")
        self.call("/console", "GET", "/console", 301)
        self.call("/console/{file}", "GET", "/console/nope.html", 404)

    def test_07_registry(self):
        adm = {"client": "admin-ops"}
        self.call("/v1/adapters", "GET", "/v1/adapters", 200, **adm)
        self.call("/v1/adapters/{id}", "GET", "/v1/adapters/nhc-birth", 200, **adm)
        self.call("/v1/adapters/{id}", "GET", "/v1/adapters/nope", 404, **adm)
        self.call("/v1/adapters/{id}", "PUT", "/v1/adapters/x", 403, body={}, **adm)
        self.call("/v1/adapters/{id}", "DELETE", "/v1/adapters/x", 403, **adm)
        st, spec = P.request("GET", "/v1/adapters/nhc-birth", **adm)
        self.call("/v1/adapters/{id}", "PUT", "/v1/adapters/nhc-birth", 200,
                  body=spec["spec"], client="department-nhc")
        self.call("/v1/adapters/{id}", "DELETE", "/v1/adapters/nhc-birth", 200,
                  client="department-nhc")
        self.call("/v1/policies", "GET", "/v1/policies", 200)
        pol = self.call("/v1/policies/{bundle}", "GET", "/v1/policies/newborn", 200)
        self.call("/v1/policies/{bundle}", "PUT", "/v1/policies/newborn", 200,
                  body=pol["spec"], **adm)
        self.call("/v1/policies/{bundle}", "PUT", "/v1/policies/newborn", 400,
                  body={"bundle": "other"}, **adm)

    def test_99_every_operation_was_called(self):
        ops = {(path, m) for path, item in DOC["paths"].items() for m in item
               if m in ("get", "put", "post", "delete")}
        self.assertEqual(ops - SEEN, set())


if __name__ == "__main__":
    unittest.main(verbosity=2)
