// verify.js - what the console checks itself, in the browser, with
// WebCrypto: RFC 6962 leaf and node hashes, RFC 9162 inclusion and
// consistency proofs, and the signature of a checkpoint envelope
// (docs/contract.md §4, §7).  Nothing here trusts the gateway's word: every function
// takes raw bytes and recomputes.  The functions throw VerifyError with a
// sentence that says what did not match.

import { decode, encode, isCanonical } from "./msgpack.js";

export class VerifyError extends Error {}

function fail(msg) {
  throw new VerifyError(msg);
}

// base64url without padding (JSON answers of the API) <-> bytes.
export function b64d(s) {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s)) fail("not base64url");
  const b = atob(s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4));
  return Uint8Array.from(b, (c) => c.charCodeAt(0));
}

export function b64e(u) {
  let s = "";
  for (const x of u) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function hex(u) {
  return Array.from(u, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export async function sha256(u) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", u));
}

function concat(...parts) {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// RFC 6962 §2.1: SHA-256(0x00 || leaf) and SHA-256(0x01 || left || right).
export function leafHash(leaf) {
  return sha256(concat(Uint8Array.of(0), leaf));
}

export function nodeHash(l, r) {
  return sha256(concat(Uint8Array.of(1), l, r));
}

// RFC 9162 §2.1.3.2: the root that leaf hash h at index in a tree of size
// reaches through path.
export async function rootFromInclusion(h, index, size, path) {
  if (!(index < size)) fail("the leaf index " + index + " is not below the tree size " + size);
  let fn = BigInt(index), sn = BigInt(size) - 1n, r = h;
  for (const p of path) {
    if (p.length !== 32) fail("a proof hash is not 32 bytes");
    if (sn === 0n) fail("the inclusion proof is longer than the tree is deep");
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("the inclusion proof is shorter than the tree is deep");
  return r;
}

// RFC 9162 §2.1.4.2: throws unless path proves that the tree of size
// first with root1 is a prefix of the tree of size second with root2.
export async function verifyConsistency(first, second, root1, root2, path) {
  if (!(first > 0 && first <= second)) fail("need 0 < first <= second");
  if (first === second) {
    if (path.length !== 0 || !equal(root1, root2))
      fail("two checkpoints of the same size " + first + " have different roots: the journal forked");
    return;
  }
  if (path.length === 0) fail("the consistency proof is empty");
  for (const p of path) if (p.length !== 32) fail("a proof hash is not 32 bytes");
  let p = path;
  if ((first & (first - 1)) === 0) p = [root1, ...path];
  let fn = BigInt(first) - 1n, sn = BigInt(second) - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = p[0], sr = p[0];
  for (const c of p.slice(1)) {
    if (sn === 0n) fail("the consistency proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      if ((fn & 1n) === 0n) {
        while (fn !== 0n && (fn & 1n) === 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("the consistency proof is too short");
  if (!equal(fr, root1))
    fail("the consistency proof does not lead to the older checkpoint's root: the journal was rewritten");
  if (!equal(sr, root2)) fail("the consistency proof does not lead to the newer checkpoint's root");
}

// DER: one TLV at off -> {tag, start (of the value), end}.
function tlv(u, off) {
  if (off + 2 > u.length) fail("DER truncated");
  const tag = u[off];
  let len = u[off + 1], p = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > u.length) fail("DER length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + u[p++];
  }
  if (p + len > u.length) fail("DER truncated");
  return { tag, hdr: off, start: p, end: p + len };
}

// The DER SubjectPublicKeyInfo of an X.509 certificate (DER).
export function spkiOfCert(der) {
  const cert = tlv(der, 0);
  const tbs = tlv(der, cert.start);
  let f = tlv(der, tbs.start);
  if (f.tag === 0xa0) f = tlv(der, f.end);	// [0] version
  // serial, signature, issuer, validity, subject, then the key.
  for (let i = 0; i < 5; i++) f = tlv(der, f.end);
  if (f.tag !== 0x30) fail("no SubjectPublicKeyInfo in the certificate");
  return der.slice(f.hdr, f.end);
}

// An ECDSA-Sig-Value (DER SEQUENCE of r, s) as the 64 bytes r || s WebCrypto takes.
export function derSigToRaw(sig) {
  const seq = tlv(sig, 0);
  if (seq.tag !== 0x30 || seq.end !== sig.length) fail("the ES256 signature is not DER");
  const out = new Uint8Array(64);
  let off = seq.start;
  for (let k = 0; k < 2; k++) {
    const n = tlv(sig, off);
    if (n.tag !== 0x02) fail("the ES256 signature is not DER");
    let v = sig.subarray(n.start, n.end);
    while (v.length > 32 && v[0] === 0) v = v.subarray(1);
    if (v.length > 32) fail("an ES256 signature integer is too long");
    out.set(v, 32 * k + 32 - v.length);
    off = n.end;
  }
  if (off !== seq.end) fail("the ES256 signature has trailing bytes");
  return out;
}

// Opens an envelope of typ: [protected, payload, signature], each bin, both
// maps canonical.  Returns {prot, payload, sig, tbs}.
export function openEnvelope(envBytes, typ) {
  let parts;
  try {
    parts = decode(envBytes);
  } catch (e) {
    fail("the envelope is not msgpack: " + e.message);
  }
  if (!Array.isArray(parts) || parts.length !== 3 || !parts.every((p) => p instanceof Uint8Array))
    fail("the envelope is not [protected, payload, signature]");
  const [protB, payB, sig] = parts;
  if (!isCanonical(protB)) fail("the envelope's protected header is not canonical msgpack");
  if (!isCanonical(payB)) fail("the envelope's payload is not canonical msgpack");
  const prot = decode(protB), payload = decode(payB);
  if (prot.typ !== typ) fail("the envelope is a " + prot.typ + ", not a " + typ);
  if (!(prot.kid instanceof Uint8Array) || prot.kid.length !== 32) fail("the envelope's kid is not 32 bytes");
  return { prot, payload, sig, tbs: encode(["lianban/1", protB, payB]) };
}

// Algorithms the browser checks itself; the others are shown as the gateway's word.
export const BROWSER_ALGS = ["ES256", "EdDSA"];

// Checks a checkpoint envelope against the checkpoint certificate (DER).
// pinHex, when set, is the SHA-256 of the key's SPKI the auditor pinned.
// Returns {payload, alg, kidHex, signature: "verified" | "not-verified", why,
// keySource: "pinned" | "gateway"}; throws on any mismatch.
export async function verifyCheckpoint(envBytes, certDer, pinHex) {
  const env = openEnvelope(envBytes, "checkpoint");
  const p = env.payload;
  if (typeof p.origin !== "string" || !(p.root instanceof Uint8Array) || p.root.length !== 32 ||
      typeof p.size !== "number" || typeof p.t_ms !== "number")
    fail("the checkpoint payload lacks origin, size, root or t_ms");
  const spki = spkiOfCert(certDer);
  const kid = await sha256(spki);
  const out = { payload: p, alg: env.prot.alg, kidHex: hex(env.prot.kid), keySource: "gateway" };
  if (!equal(kid, env.prot.kid))
    fail("the checkpoint was signed by key " + hex(env.prot.kid).slice(0, 16) +
      "…, not by the checkpoint certificate's key " + hex(kid).slice(0, 16) + "…");
  if (pinHex) {
    if (pinHex.toLowerCase() !== hex(kid))
      fail("the checkpoint key " + hex(kid).slice(0, 16) + "… is not the key you pinned (" +
        pinHex.slice(0, 16) + "…)");
    out.keySource = "pinned";
  }
  let ok;
  if (env.prot.alg === "ES256") {
    const key = await crypto.subtle.importKey("spki", spki, { name: "ECDSA", namedCurve: "P-256" },
      false, ["verify"]);
    ok = await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key,
      derSigToRaw(env.sig), env.tbs);
  } else if (env.prot.alg === "EdDSA") {
    let key;
    try {
      key = await crypto.subtle.importKey("spki", spki, { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      return Object.assign(out, { signature: "not-verified",
        why: "this browser has no Ed25519 in WebCrypto" });
    }
    ok = await crypto.subtle.verify({ name: "Ed25519" }, key, env.sig, env.tbs);
  } else {
    return Object.assign(out, { signature: "not-verified",
      why: env.prot.alg + " signatures are not verified in the browser (WebCrypto has no " +
        env.prot.alg + "); use lianctl journal verify" });
  }
  if (!ok) fail("the checkpoint signature does not verify with the checkpoint key");
  return Object.assign(out, { signature: "verified" });
}
