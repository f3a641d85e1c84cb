#!/usr/bin/env python3
"""Verify the seals of a saved lianban exchange (or verification) answer the way an
outsider can:
with python3-msgpack, hashlib and the openssl command line only, following
docs/contract.md §4 and §6.  docs/seals.md explains every step.

usage: verify_seal_outsider.py ANSWER.json SEAL-ROOT.pem
       verify_seal_outsider.py --split ANSWER.json INDEX DIR

The first form checks every sealed document, prints one line per document
and exits 1 when any seal fails.  The second checks the document digest and
the Merkle path of result INDEX and writes into DIR the files that the
openssl commands of docs/seals.md verify (tbs, sig, seal.der, alg, kid, iat,
iss)."""

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import msgpack

SM2_ID = "1234567812345678"


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def openssl(*args, data=None):
    r = subprocess.run(["openssl"] + list(args), input=data, capture_output=True)
    if r.returncode != 0:
        raise ValueError("openssl %s: %s" % (args[0], r.stderr.decode(errors="replace").strip()))
    return r.stdout


def make_hash(alg):
    """SHA-256 from hashlib; SM3 (SM2 seals) from openssl dgst -sm3."""
    if alg == "SM2":
        return lambda data: openssl("dgst", "-sm3", "-binary", data=data)
    return lambda data: hashlib.sha256(data).digest()


def root_from_path(H, leaf, index, size, path):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise ValueError("leaf index %d is not below the batch size %d" % (index, size))
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("the Merkle path is too long")
        if fn & 1 or fn == sn:
            r = H(b"\x01" + p + r)
            if not fn & 1:
                while fn != 0 and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = H(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the Merkle path is too short")
    return r


def open_receipt(result):
    """Steps 1 and 2: the document digest and the Merkle path, in Python."""
    # A verification's result seals an attestation in place of a document.
    doc = b64d(result["document_bytes"] if "document_bytes" in result
               else result["attestation_bytes"])
    seal = result["seal"]
    claim_b = b64d(seal["claim"])
    claim = msgpack.unpackb(claim_b, raw=False)
    prot_b, pay_b, sig = msgpack.unpackb(b64d(seal["batch"]), raw=False)
    prot = msgpack.unpackb(prot_b, raw=False)
    payload = msgpack.unpackb(pay_b, raw=False)
    if prot["typ"] != "seal-batch":
        raise ValueError("the envelope is a %r, not a seal-batch" % prot["typ"])
    H = make_hash(prot["alg"])

    # 1. The document is the one the claim names.
    if claim["doc"] != H(doc):
        raise ValueError("document digest does not match the claim")
    # 2. The claim is a leaf of the signed batch.
    leaf = H(b"\x00" + claim_b)
    path = [b64d(p) for p in seal["path"]]
    if root_from_path(H, leaf, seal["index"], payload["size"], path) != payload["root"]:
        raise ValueError("the Merkle path does not lead to the batch root")
    if (claim["seal"], claim["iss"]) != (payload["seal"], payload["iss"]):
        raise ValueError("the batch is of another seal")
    return claim, prot, payload, msgpack.packb(["lianban/1", prot_b, pay_b],
                                               use_bin_type=True), sig


def split(result, outdir):
    """Steps 1 and 2, then the files that the openssl commands of steps 3
    and 4 (docs/seals.md) read."""
    claim, prot, payload, tbs, sig = open_receipt(result)
    os.makedirs(outdir, exist_ok=True)
    files = {"tbs": tbs, "sig": sig, "seal.der": prot["x5c"][0],
             "alg": prot["alg"].encode(), "kid": prot["kid"].hex().encode(),
             "iat": str(claim["iat"]).encode(), "iss": claim["iss"].encode()}
    for name, data in files.items():
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
    return claim, prot["alg"], payload


def verify(result, seal_root, tmp):
    claim, prot, payload, tbs_bytes, sig = open_receipt(result)
    # 3. The seal certificate signed the batch.
    cert = os.path.join(tmp, "seal.pem")
    with open(cert, "wb") as f:
        f.write(openssl("x509", "-inform", "DER", data=prot["x5c"][0]))
    pub = os.path.join(tmp, "seal-pub.pem")
    with open(pub, "wb") as f:
        f.write(openssl("x509", "-in", cert, "-pubkey", "-noout"))
    spki = openssl("pkey", "-pubin", "-in", pub, "-outform", "DER")
    if hashlib.sha256(spki).digest() != prot["kid"]:
        raise ValueError("kid does not name the certificate in x5c")
    tbs = os.path.join(tmp, "tbs")
    with open(tbs, "wb") as f:
        f.write(tbs_bytes)
    sigf = os.path.join(tmp, "sig")
    with open(sigf, "wb") as f:
        f.write(sig)
    if prot["alg"] == "ES256":
        openssl("dgst", "-sha256", "-verify", pub, "-signature", sigf, tbs)
    elif prot["alg"] == "SM2":
        openssl("dgst", "-sm3", "-verify", pub, "-sigopt", "distid:" + SM2_ID,
                "-signature", sigf, tbs)
    elif prot["alg"] == "EdDSA":
        openssl("pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin", "-in", tbs,
                "-sigfile", sigf)
    else:
        raise ValueError("unknown alg %r" % prot["alg"])
    # 4. The certificate is the issuer's seal, under the seal root, at iat.
    openssl("verify", "-attime", str(claim["iat"]), "-CAfile", seal_root, cert)
    subject = openssl("x509", "-in", cert, "-noout", "-subject", "-nameopt", "RFC2253").decode()
    m = re.search(r"(?:^|[=,])CN=([^,\n]+)", subject.replace("subject=", "", 1))
    if m is None or m.group(1) != claim["iss"]:
        raise ValueError("the seal certificate is not the seal of %s" % claim["iss"])
    return claim, prot["alg"], payload


def main_split(argv):
    with open(argv[2]) as f:
        answer = json.load(f)
    try:
        r = answer["results"][int(argv[3])]
        if r.get("status") != "ok":
            raise ValueError("result %s was not fetched: %s" % (argv[3], r.get("status")))
        claim, alg, payload = split(r, argv[4])
    except (ValueError, KeyError, TypeError, IndexError, msgpack.ExtraData) as e:
        print("SEAL INVALID: %s" % e)
        return 1
    print("document digest and Merkle path ok: issuer %s, seal %s, %s, leaf %d of %d" % (
        claim["iss"], claim["seal"], alg, r["seal"]["index"], payload["size"]))
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "--split":
        return main_split(argv)
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    with open(argv[1]) as f:
        answer = json.load(f)
    bad = good = 0
    with tempfile.TemporaryDirectory() as tmp:
        for r in answer["results"]:
            if r.get("status") != "ok":
                continue
            try:
                claim, alg, payload = verify(r, argv[2], tmp)
            except (ValueError, KeyError, TypeError, msgpack.ExtraData) as e:
                print("%s: SEAL INVALID: %s" % (r.get("item"), e))
                bad += 1
                continue
            print("%s: seal ok: issuer %s, seal %s, %s, leaf %d of %d" % (
                r["item"], claim["iss"], claim["seal"], alg, r["seal"]["index"],
                payload["size"]))
            good += 1
    if bad or not good:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
