// console_verify.mjs - runs the console's own verifiers (console/lib/*.js)
// in node on proofs and records the gateway served, for tests/it_console_api.py.
// Every genuine input must verify against the roots the Python side computed
// independently; every input with one flipped bit must fail.
//
//   node tests/console_verify.mjs CONFIG.json
//
// CONFIG: {console, leaves: [b64], roots: {size: hex}, inclusion: [{seq, size, path}],
//          consistency: [{first, second, path}], checkpoint: {envelope, size},
//          certificate: b64}
// Prints {"checked": n, "caught": n, "problems": [sentences]}.

import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const lib = (f) => import(pathToFileURL(path.join(cfg.console, "lib", f)).href);
const v = await lib("verify.js");
const m = await lib("msgpack.js");

const problems = [];
let checked = 0, caught = 0;
const leaves = cfg.leaves.map(v.b64d);
const root = (n) => Uint8Array.from(Buffer.from(cfg.roots[n], "hex"));

function flipped(list, j) {
  const c = list.map((x) => Uint8Array.from(x));
  c[j][c[j].length - 1] ^= 1;
  return c;
}

// fn(input) must throw or return false for a tampered input.
async function mustFail(what, fn) {
  let ok;
  try {
    ok = await fn();
  } catch (e) {
    ok = false;
  }
  if (ok) problems.push(what + ": a tampered input verified");
  else caught++;
}

for (let i = 0; i < leaves.length; i++) {
  const rec = m.decode(leaves[i]);
  if (!m.isCanonical(leaves[i]) || rec.seq !== i)
    problems.push("record " + i + " is not canonical or not seq " + i);
  checked++;
}
await mustFail("a record with a non-shortest integer", () => m.isCanonical(Uint8Array.of(0xcc, 0x01)));

for (const p of cfg.inclusion) {
  const proof = p.path.map(v.b64d);
  const lh = await v.leafHash(leaves[p.seq]);
  const r = await v.rootFromInclusion(lh, p.seq, p.size, proof);
  if (!v.equal(r, root(p.size))) problems.push("inclusion " + p.seq + "/" + p.size + " does not reach the root");
  checked++;
  for (let j = 0; j < proof.length; j++)
    await mustFail("inclusion " + p.seq + "/" + p.size + " path[" + j + "]", async () =>
      v.equal(await v.rootFromInclusion(lh, p.seq, p.size, flipped(proof, j)), root(p.size)));
  if (p.size > 1)
    await mustFail("inclusion " + p.seq + "/" + p.size + " another leaf", async () =>
      v.equal(await v.rootFromInclusion(await v.leafHash(leaves[(p.seq + 1) % p.size]), p.seq,
        p.size, proof), root(p.size)));
}

for (const p of cfg.consistency) {
  const proof = p.path.map(v.b64d);
  try {
    await v.verifyConsistency(p.first, p.second, root(p.first), root(p.second), proof);
  } catch (e) {
    problems.push("consistency " + p.first + "->" + p.second + ": " + e.message);
  }
  checked++;
  for (let j = 0; j < proof.length; j++)
    await mustFail("consistency " + p.first + "->" + p.second + " path[" + j + "]", async () => {
      await v.verifyConsistency(p.first, p.second, root(p.first), root(p.second), flipped(proof, j));
      return true;
    });
  await mustFail("consistency " + p.first + "->" + p.second + " another first root", async () => {
    await v.verifyConsistency(p.first, p.second, flipped([root(p.first)], 0)[0], root(p.second), proof);
    return true;
  });
}

const env = v.b64d(cfg.checkpoint.envelope), cert = v.b64d(cfg.certificate);
const ck = await v.verifyCheckpoint(env, cert, null);
if (ck.signature !== "verified" || ck.payload.size !== cfg.checkpoint.size ||
    v.hex(ck.payload.root) !== cfg.roots[cfg.checkpoint.size])
  problems.push("the checkpoint does not verify: " + JSON.stringify(ck));
checked++;
const pin = v.hex(await v.sha256(v.spkiOfCert(cert)));
if ((await v.verifyCheckpoint(env, cert, pin)).keySource !== "pinned") problems.push("the pin is not used");
await mustFail("checkpoint signature", async () =>
  (await v.verifyCheckpoint(flipped([env], 0)[0], cert, null)).signature === "verified");
await mustFail("checkpoint pin", async () =>
  (await v.verifyCheckpoint(env, cert, "00".repeat(32))).signature === "verified");

// Other algorithms: EdDSA is checked where WebCrypto has Ed25519, SM2 never.
for (const x of cfg.other_checkpoints || []) {
  const e = v.b64d(x.envelope), c = v.b64d(x.certificate);
  let got;
  try {
    got = await v.verifyCheckpoint(e, c, null);
  } catch (err) {
    got = { signature: "error: " + err.message };
  }
  if (got.signature !== x.expect) problems.push(x.alg + " checkpoint: " + got.signature + ", not " + x.expect);
  if (x.expect === "not-verified" && !(got.why || "").includes("not verified in the browser"))
    problems.push(x.alg + " checkpoint: no sentence says it is not verified");
  checked++;
  if (x.expect === "verified")
    await mustFail(x.alg + " checkpoint signature", async () =>
      (await v.verifyCheckpoint(flipped([e], 0)[0], c, null)).signature === "verified");
}

process.stdout.write(JSON.stringify({ checked, caught, problems }) + "\n");
