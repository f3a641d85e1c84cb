"""Integration: one encoding per identifier (API, CLI, logs).

A jti is base64url of its 16 bytes wherever it is shown, and the CLI takes
what it prints: the claims.jti of "lianctl consent issue --json" works as
"consent revoke --jti" input (as do 32 hex digits, the older form).  An
exchange id is base64url in the API's answer and in the log's exchange
event alike."""

import base64
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbtest  # noqa: E402

ITEM = "birth_medical_certificate"
P = None


def setUpModule():
    global P
    P = lbtest.Platform(gw_args=["--log-format", "json"])


def tearDownModule():
    if P is not None:
        P.close()


def issue_json():
    out = P.ctl("consent", "issue", "--json",
                "--authority", os.path.join(P.pki, "authorities", "faceauth.key"),
                "--authority-cert", os.path.join(P.pki, "trust", "consent", "faceauth.pem"),
                "--sub", lbtest.NEWBORN, "--azp", "newborn", "--bundle", "newborn",
                "--items", ITEM, check=True)
    return json.loads(out.stdout)


class Ids(unittest.TestCase):

    def test_revoke_takes_the_jti_issue_prints(self):
        issued = issue_json()
        jti = issued["claims"]["jti"]
        self.assertRegex(jti, r"^[A-Za-z0-9_-]{22}$")
        out = P.ctl("consent", "revoke", "--jti", jti, client="admin-ops")
        self.assertEqual(out.returncode, 0, out.stderr)
        st, ans = P.exchange(lbtest.NEWBORN, [ITEM], issued["token"])
        self.assertEqual(st, 403, ans)
        self.assertEqual(ans["error"]["code"], "consent_revoked", ans)
        # The hex form still works.
        hexjti = base64.urlsafe_b64decode(issue_json()["claims"]["jti"] + "==").hex()
        out = P.ctl("consent", "revoke", "--jti", hexjti, client="admin-ops")
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_exchange_id_is_one_form_in_answer_and_log(self):
        tok = P.issue(lbtest.NEWBORN, [ITEM])
        st, ans = P.exchange(lbtest.NEWBORN, [ITEM], tok)
        self.assertEqual(st, 200, ans)
        ids = [json.loads(line).get("id") for line in P.gw_log_text().splitlines()
               if line.startswith("{") and '"event":"exchange"' in line]
        self.assertIn(ans["exchange"], ids)
        self.assertTrue(re.match(r"^[A-Za-z0-9_-]{22}$", ans["exchange"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
