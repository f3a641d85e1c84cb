"""Integration: the department simulators in their native formats (fixed-width
GBK, XML with and without namespaces, quoted CSV, GBK CSV, msgpack, JSON), the
full newborn and school-enrollment bundles through the real lianband, and the
fan-out's failure isolation: a department that is down, too slow, garbled or
answering about someone else fails only its own items."""

import copy
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402
from lbtest import b64d  # noqa: E402

DATA = os.path.join(lbtest.SRCDIR, "adapters", "data", "families.json")
with open(DATA) as _f:
    FAMILIES = json.load(_f)["families"]

NEWBORN_KID = ["birth_medical_certificate", "vaccination_record", "household_register",
               "medical_insurance", "social_security_card"]
PARENT = ["resident_id_card", "marriage_certificate"]
SCHOOL_KID = ["household_register", "birth_medical_certificate", "vaccination_record"]

# The timeout of the adapter specs (adapters/specs/*.json) and a delay past it.
TIMEOUT_MS = 3000
SLOW_MS = TIMEOUT_MS + 700


def person(role, family):
    fam = next(f for f in FAMILIES if f["family"] == family)
    return fam, next(m for m in fam["members"] if m["role"] == role)


def released(bundle):
    with open(os.path.join(lbtest.SRCDIR, "policies", bundle + ".json")) as f:
        return {i["item"]: set(i["fields"]) for i in json.load(f)["items"]}


def gender(m):
    return {"1": "male", "2": "female"}[m["sex"]]


def expected(item, fam, m):
    """The canonical document of item for member m, written from the data file
    alone (docs/departments.md), before the policy drops fields."""
    father, mother = (next(x for x in fam["members"] if x["role"] == r)
                      for r in ("father", "mother"))
    parent = m["role"] in ("father", "mother")
    hh = fam["household"]
    holder = {"id": m["id"], "name": m["name"]}
    if item == "household_register":
        rel = {"father": "head", "mother": "spouse"}.get(m["role"]) or \
            ("son" if m["sex"] == "1" else "daughter")
        fields = {"gender": gender(m), "birth_date": m["birth_date"],
                  "ethnicity": m["ethnicity"], "relation": rel, "address": hh["address"]}
        if not parent:
            fields.update(father_id=father["id"], mother_id=mother["id"])
        return {"type": item, "number": hh["number"], "holder": holder,
                "issuer": {"dept": "psb", "name": hh["authority"]},
                "issued": m.get("registered", hh["registered"]), "fields": fields}
    if item == "resident_id_card":
        card = m["id_card"]
        return {"type": item, "number": m["id"], "holder": holder,
                "issuer": {"dept": "psb", "name": card["authority"]},
                "issued": card["issued"], "valid_until": card["valid_until"],
                "fields": {"gender": gender(m), "ethnicity": m["ethnicity"],
                           "birth_date": m["birth_date"], "address": hh["address"]}}
    if item == "birth_medical_certificate":
        bmc = m["birth_medical_certificate"]
        return {"type": item, "number": bmc["cert_no"], "holder": holder,
                "issuer": {"dept": "nhc", "name": bmc["hospital"]},
                "issued": bmc["issue_date"],
                "fields": {"gender": gender(m), "birth_date": m["birth_date"],
                           "birth_time": bmc["birth_time"], "birth_place": bmc["birthplace"],
                           "weight_g": bmc["weight_g"], "mother_name": mother["name"],
                           "mother_id": mother["id"], "father_name": father["name"],
                           "father_id": father["id"]}}
    if item == "marriage_certificate":
        mar = fam["marriage"]
        spouse = mother if m is father else father
        return {"type": item, "number": mar["cert_no"], "holder": holder,
                "issuer": {"dept": "mca", "name": mar["registry"]}, "issued": mar["date"],
                "fields": {"kind": "marriage", "spouse_name": spouse["name"],
                           "spouse_id": spouse["id"], "spouse_gender": gender(spouse)}}
    if item == "vaccination_record":
        card, vs = m["vaccination_card"], m["vaccinations"]
        return {"type": item, "number": card["cert_no"], "holder": holder,
                "issuer": {"dept": "cdc", "name": card["clinic"]}, "issued": card["issued"],
                "fields": {"gender": gender(m), "birth_date": m["birth_date"],
                           "doses": ", ".join("%s 第%d剂 %s" % (v["vaccine"], v["dose"], v["date"])
                                              for v in vs),
                           "dose_count": len(vs), "last_dose_date": vs[-1]["date"],
                           "remark": '按"国家免疫规划"程序接种'}}
    if item == "medical_insurance":
        fields = {"gender": gender(m), "birth_date": m["birth_date"],
                  "insurance_type": "employee_basic" if parent else "resident_basic",
                  "status": "insured", "insured_region": fam["region"]}
        if parent:
            fields["employer"] = m["employer"]
        return {"type": item, "number": m["medical_insurance_no"], "holder": holder,
                "issuer": {"dept": "nhsa", "name": fam["offices"]["nhsa"]},
                "issued": m["insured_since"], "fields": fields}
    if item == "social_security_card":
        card = m["ss_card"]
        return {"type": item, "number": card["card_no"], "holder": holder,
                "issuer": {"dept": "hrss", "name": fam["offices"]["hrss"]},
                "issued": card["issued"], "valid_until": card["valid_until"],
                "fields": {"gender": gender(m), "birth_date": m["birth_date"],
                           "social_security_no": m["id"], "bank": card["bank"],
                           "card_version": 3, "card_status": "in_use"}}
    if item == "property_certificate":
        pr = fam["property"]
        return {"type": item, "number": pr["cert_no"], "holder": holder,
                "issuer": {"dept": "mnr", "name": pr["registry"]}, "issued": pr["registered"],
                "fields": {"address": pr["address"], "floor_area_m2": pr["area_m2"],
                           "use": pr["use"], "ownership": "joint"}}
    if item == "rental_registration":
        rt = fam["rental"]
        return {"type": item, "number": rt["reg_no"], "holder": holder,
                "issuer": {"dept": "mohurd", "name": rt["office"]}, "issued": rt["registered"],
                "valid_until": rt["end"],
                "fields": {"address": rt["address"], "landlord": rt["landlord"],
                           "lease_start": rt["start"], "lease_end": rt["end"]}}
    raise KeyError(item)


def minimized(doc, fields):
    doc = copy.deepcopy(doc)
    doc["fields"] = {k: v for k, v in doc["fields"].items() if k in fields}
    return doc


def bundle_request(P, bundle, consumer, groups):
    """groups: [(subject, items, act)]; act None is the subject's own consent,
    otherwise a guardian's (act = the parent whose face was verified)."""
    reqs = []
    for sub, items, act in groups:
        kw = {} if act is None else {"act": act, "rel": "guardian"}
        reqs.append({"subject": sub, "items": items,
                     "consent": P.issue(sub, items, azp=consumer, bundle=bundle, **kw)})
    return P.request("POST", "/v1/exchanges", {"bundle": bundle, "requests": reqs},
                     client="consumer-" + consumer)


def by_key(body):
    return {(r["subject"], r["item"]): r for r in body["results"]}


class Bundles(unittest.TestCase):
    """Both bundles end to end against the simulator in its normal state."""

    @classmethod
    def setUpClass(cls):
        cls.P = lbtest.Platform()

    @classmethod
    def tearDownClass(cls):
        cls.P.close()

    def check_documents(self, body, bundle, expect):
        """expect: {(subject, item): (family, member) or error code}."""
        rel = released(bundle)
        got = by_key(body)
        self.assertEqual(set(got), set(expect), body)
        seal_root = os.path.join(self.P.pki, "seal-root.pem")
        for key, want in expect.items():
            r = got[key]
            if isinstance(want, str):
                self.assertEqual(r["status"], want, r)
                self.assertNotIn("document", r)
                continue
            self.assertEqual(r["status"], "ok", r)
            fam, m = want
            self.assertEqual(r["document"], minimized(expected(key[1], fam, m), rel[key[1]]),
                             key)
            doc_bytes = b64d(r["document_bytes"])
            self.assertEqual(msgpack.unpackb(doc_bytes, raw=False), r["document"])
            claim, payload = lbtest.verify_seal(r["seal"], doc_bytes, seal_root)
            self.assertEqual(claim["item"], key[1])
            self.assertEqual(claim["iss"], r["document"]["issuer"]["dept"])

    def test_01_newborn_bundle(self):
        fam, baby = person("newborn", "wang-beijing")
        _, mother = person("mother", "wang-beijing")
        _, father = person("father", "wang-beijing")
        st, body = bundle_request(self.P, "newborn", "newborn", [
            (baby["id"], NEWBORN_KID, mother["id"]),
            (mother["id"], PARENT, None),
            (father["id"], PARENT, None)])
        self.assertEqual(st, 200, body)
        expect = {(baby["id"], i): (fam, baby) for i in NEWBORN_KID}
        for m in (mother, father):
            expect.update({(m["id"], i): (fam, m) for i in PARENT})
        self.check_documents(body, "newborn", expect)
        # Every department of the bundle was asked exactly as often as it has items.
        stats = self.P.sim_stats()["by_dept"]
        for dept, n in (("nhc", 1), ("cdc", 1), ("nhsa", 1), ("hrss", 1), ("mca", 2)):
            self.assertGreaterEqual(stats[dept], n, stats)

    def test_02_newborn_bundle_other_family(self):
        """Another family, the father as guardian, and a daughter (relation, gender)."""
        fam, baby = person("newborn", "chen-shanghai")
        _, father = person("father", "chen-shanghai")
        st, body = bundle_request(self.P, "newborn", "newborn", [
            (baby["id"], NEWBORN_KID, father["id"]),
            (father["id"], PARENT + ["medical_insurance"], None)])
        self.assertEqual(st, 200, body)
        expect = {(baby["id"], i): (fam, baby) for i in NEWBORN_KID}
        expect.update({(father["id"], i): (fam, father)
                       for i in PARENT + ["medical_insurance"]})
        self.check_documents(body, "newborn", expect)
        doc = by_key(body)[(baby["id"], "household_register")]["document"]
        self.assertEqual(doc["fields"]["relation"], "daughter")
        self.assertEqual(doc["fields"]["mother_id"], person("mother", "chen-shanghai")[1]["id"])

    def test_03_school_enrollment_with_property(self):
        fam, child = person("child", "chen-shanghai")
        _, mother = person("mother", "chen-shanghai")
        _, father = person("father", "chen-shanghai")
        st, body = bundle_request(self.P, "school_enrollment", "school", [
            (child["id"], SCHOOL_KID, father["id"]),
            (father["id"], PARENT + ["property_certificate"], None),
            (mother["id"], PARENT + ["property_certificate"], None)])
        self.assertEqual(st, 200, body)
        expect = {(child["id"], i): (fam, child) for i in SCHOOL_KID}
        for m in (mother, father):
            expect.update({(m["id"], i): (fam, m) for i in PARENT + ["property_certificate"]})
        self.check_documents(body, "school_enrollment", expect)

    def test_04_school_enrollment_with_rental(self):
        """The Chengdu family rents: the rental registration comes from mohurd's GBK
        CSV, and the property register has no record (404), which fails that
        item alone."""
        fam, child = person("child", "yang-chengdu")
        _, mother = person("mother", "yang-chengdu")
        st, body = bundle_request(self.P, "school_enrollment", "school", [
            (child["id"], SCHOOL_KID, mother["id"]),
            (mother["id"], PARENT + ["rental_registration", "property_certificate"], None)])
        self.assertEqual(st, 200, body)
        expect = {(child["id"], i): (fam, child) for i in SCHOOL_KID}
        expect.update({(mother["id"], i): (fam, mother)
                       for i in PARENT + ["rental_registration"]})
        expect[(mother["id"], "property_certificate")] = "department_bad_response"
        self.check_documents(body, "school_enrollment", expect)

    def test_05_guardian_must_be_named_by_the_childs_records(self):
        """A parent of another family acting as guardian: the child's items are
        refused, the real mother's own item in the same request is served."""
        fam, baby = person("newborn", "wang-beijing")
        _, mother = person("mother", "wang-beijing")
        _, stranger = person("father", "chen-shanghai")
        st, body = bundle_request(self.P, "newborn", "newborn", [
            (baby["id"], ["birth_medical_certificate", "medical_insurance"], stranger["id"]),
            (mother["id"], ["resident_id_card"], None)])
        self.assertEqual(st, 200, body)
        self.check_documents(body, "newborn", {
            (baby["id"], "birth_medical_certificate"): "guardian_unverified",
            (baby["id"], "medical_insurance"): "guardian_unverified",
            (mother["id"], "resident_id_card"): (fam, mother)})

    def test_06_simulator_serves_every_department_on_every_port(self):
        log = os.path.join(self.P.tmp, "deptsim-two-ports.log")
        with open(log, "w") as out:
            sim = subprocess.Popen([lbtest.DEPTSIM, "--listen", "127.0.0.1:0",
                                    "--listen", "127.0.0.1:0", "--data", DATA],
                                   stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 15
            ports = []
            text = ""
            while len(ports) < 2 and time.time() < deadline and sim.poll() is None:
                with open(log) as f:
                    text = f.read()
                ports = re.findall(r"listening on 127\.0\.0\.1:(\d+)", text)
                time.sleep(0.05)
            self.assertEqual(len(ports), 2, text)
            _, mother = person("mother", "yang-chengdu")
            for port in ports:
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=10)
                conn.request("GET", "/mohurd/rental-registrations?id=" + mother["id"])
                r = conn.getresponse()
                text = r.read().decode("gbk")
                conn.close()
                self.assertEqual(r.status, 200)
                self.assertIn(mother["name"], text)
        finally:
            sim.terminate()
            self.assertEqual(sim.wait(10), 0)

    def test_07_simulator_refuses_an_incomplete_data_file(self):
        with open(DATA) as f:
            data = json.load(f)
        del data["families"][1]["members"][0]["ss_card"]["bank"]
        tmp = tempfile.mkdtemp(prefix="lianban-data-")
        try:
            path = lbtest.write_json(tmp, "families.json", data)
            r = subprocess.run([lbtest.DEPTSIM, "--listen", "127.0.0.1:0", "--data", path],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(data["families"][1]["members"][0]["id"], r.stderr)
            self.assertIn("/hrss/social-security-cards", r.stderr)
            r = subprocess.run([lbtest.DEPTSIM, "--garbage", "nosuch"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 2, r.stderr)
            self.assertIn("unknown department", r.stderr)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class Faults(unittest.TestCase):
    """One exchange over the newborn bundle while cdc is down, hrss answers
    past its adapter's timeout, nhsa answers garbage and mca answers with
    another person's certificate: each fails only its own items."""

    @classmethod
    def setUpClass(cls):
        cls.P = lbtest.Platform(sim_args=["--down", "cdc", "--delay", "hrss=%d" % SLOW_MS,
                                          "--garbage", "nhsa", "--wrong-holder", "mca"])

    @classmethod
    def tearDownClass(cls):
        cls.P.close()

    def test_01_each_department_fails_only_its_items(self):
        fam, baby = person("newborn", "wang-beijing")
        _, mother = person("mother", "wang-beijing")
        _, father = person("father", "wang-beijing")
        st, body = bundle_request(self.P, "newborn", "newborn", [
            (baby["id"], NEWBORN_KID, mother["id"]),
            (mother["id"], PARENT + ["medical_insurance"], None),
            (father["id"], PARENT, None)])
        self.assertEqual(st, 200, body)
        got = by_key(body)
        want = {
            (baby["id"], "birth_medical_certificate"): "ok",
            (baby["id"], "household_register"): "ok",
            (baby["id"], "vaccination_record"): "department_unavailable",
            (baby["id"], "social_security_card"): "department_timeout",
            (baby["id"], "medical_insurance"): "department_bad_response",
            (mother["id"], "medical_insurance"): "department_bad_response",
            (mother["id"], "resident_id_card"): "ok",
            (mother["id"], "marriage_certificate"): "subject_mismatch",
            (father["id"], "resident_id_card"): "ok",
            (father["id"], "marriage_certificate"): "subject_mismatch",
        }
        self.assertEqual({k: r["status"] for k, r in got.items()}, want, body)
        rel = released("newborn")
        for key, code in want.items():
            r = got[key]
            if code == "ok":
                who = {baby["id"]: baby, mother["id"]: mother, father["id"]: father}[key[0]]
                self.assertEqual(r["document"],
                                 minimized(expected(key[1], fam, who), rel[key[1]]))
                lbtest.verify_seal(r["seal"], b64d(r["document_bytes"]),
                                   os.path.join(self.P.pki, "seal-root.pem"))
            else:
                self.assertNotIn("document", r, r)
                self.assertNotIn("seal", r, r)
                self.assertTrue(r.get("message"), r)
                # Messages never quote a department's answer or an ID number.
                self.assertNotIn(baby["id"], r["message"])
        # The failures are journaled with their codes, per item.
        ck, leaves = self.P.journal()
        recs = [msgpack.unpackb(x, raw=False) for x in leaves]
        items = [x for x in recs if x["kind"] == "item"]
        codes = sorted((x["dept"], x["code"]) for x in items)
        for dept, code in (("cdc", "department_unavailable"), ("hrss", "department_timeout"),
                           ("nhsa", "department_bad_response"), ("mca", "subject_mismatch"),
                           ("nhc", "ok"), ("psb", "ok")):
            self.assertIn((dept, code), codes)
        # The department that is down was asked (and counted) all the same.
        stats = self.P.sim_stats()["by_dept"]
        self.assertGreaterEqual(stats["cdc"], 1, stats)


class FormatFaults(unittest.TestCase):
    """Garbage where the gateway expects fixed-width GBK and XML (psb), and a
    record list about other people (mnr answers with another family's title,
    so no record carries the subject)."""

    @classmethod
    def setUpClass(cls):
        cls.P = lbtest.Platform(sim_args=["--garbage", "psb", "--wrong-holder", "mnr"])

    @classmethod
    def tearDownClass(cls):
        cls.P.close()

    def test_01_garbled_and_foreign_answers(self):
        fam, mother = person("mother", "chen-shanghai")
        items = ["household_register", "resident_id_card", "property_certificate",
                 "marriage_certificate"]
        st, body = bundle_request(self.P, "school_enrollment", "school",
                                  [(mother["id"], items, None)])
        self.assertEqual(st, 200, body)
        got = by_key(body)
        self.assertEqual({k[1]: r["status"] for k, r in got.items()}, {
            "household_register": "department_bad_response",
            "resident_id_card": "department_bad_response",
            "property_certificate": "subject_mismatch",
            "marriage_certificate": "ok"}, body)
        self.assertEqual(got[(mother["id"], "marriage_certificate")]["document"],
                         minimized(expected("marriage_certificate", fam, mother),
                                   released("school_enrollment")["marriage_certificate"]))
        for item in items[:3]:
            self.assertNotIn("document", got[(mother["id"], item)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
