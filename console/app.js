// app.js - the audit console's views (docs/audit.md).  The page holds no
// session: every call goes to the API with the browser's client
// certificate, and the API's roles decide (auditor: search, records,
// checkpoints; admin: operations; consumer: the citizen's access report).
// State lives in the address bar (the search) and in localStorage (the
// kept checkpoints and the pinned key), never on the server.

import { decode, isCanonical } from "./lib/msgpack.js";
import {
  b64d, b64e, hex, equal, leafHash, rootFromInclusion, verifyConsistency, verifyCheckpoint,
  BROWSER_ALGS,
} from "./lib/verify.js";

const HISTORY_KEY = "lianban.console.checkpoints";
const PIN_KEY = "lianban.console.pin";
const HISTORY_MAX = 20;
const CODES = ["ok", "bad_request", "too_large", "unauthenticated", "forbidden_role",
  "unknown_bundle", "item_not_in_policy", "consent_missing", "consent_malformed",
  "consent_bad_signature", "consent_untrusted_issuer", "consent_wrong_audience",
  "consent_wrong_consumer", "consent_expired", "consent_not_yet_valid", "consent_wrong_bundle",
  "consent_item_not_covered", "assurance_too_low", "consent_replayed", "consent_revoked",
  "guardian_unverified", "no_adapter", "department_unavailable", "department_timeout",
  "department_bad_response", "subject_mismatch", "rate_limited", "journal_unavailable",
  "agent_unverified", "predicate_not_allowed"];
const SEARCH_FIELDS = ["subject", "consumer", "dept", "item", "since", "until", "kind", "code",
  "limit"];

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined)
    e.append(typeof k === "string" ? document.createTextNode(k) : k);
  return e;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// One API call; the answer as JSON, or ApiError with the gateway's sentence.
async function api(path, headers) {
  let r;
  try {
    r = await fetch(path, { headers: Object.assign({ Accept: "application/json" }, headers || {}),
      cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "network", "the gateway could not be reached (" + e.message + ")");
  }
  let body = null;
  try {
    body = await r.json();
  } catch (e) {
    body = null;
  }
  if (!r.ok) {
    const err = body && body.error ? body.error : { code: "http_" + r.status, message: r.statusText };
    throw new ApiError(r.status, err.code, err.message);
  }
  if (body === null) throw new ApiError(r.status, "bad_answer", "the answer is not JSON");
  return body;
}

function apiMessage(e) {
  if (e instanceof ApiError) {
    if (e.code === "forbidden_role") return "Your certificate may not do this: " + e.message;
    if (e.code === "unauthenticated") return "The gateway wants a client certificate: " + e.message;
    return e.message + " (" + e.code + ")";
  }
  return e.message;
}

function pad(n, w) {
  return String(n).padStart(w || 2, "0");
}

function fmtTime(ms) {
  if (typeof ms !== "number") return "";
  const d = new Date(ms);
  return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
    pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." +
    pad(d.getMilliseconds(), 3);
}

function plural(n, what) {
  return n + " " + what + (n === 1 ? "" : "s");
}

function short(h) {
  return h.slice(0, 16) + "…";
}

// Hash routes: #/view?query.
function parseHash() {
  const h = location.hash.replace(/^#/, "") || "/search";
  const q = h.indexOf("?");
  const view = (q < 0 ? h : h.slice(0, q)).replace(/^\//, "") || "search";
  return { view, params: new URLSearchParams(q < 0 ? "" : h.slice(q + 1)) };
}

function setStatus(node, text, kind) {
  node.textContent = text;
  node.dataset.kind = kind || "";
}

// The witness: kept checkpoints and the consistency of the newest with the oldest.

function loadHistory() {
  try {
    const h = JSON.parse(localStorage.getItem(HISTORY_KEY) || "[]");
    return Array.isArray(h) ? h : [];
  } catch (e) {
    return [];
  }
}

function saveHistory(h) {
  if (h.length > HISTORY_MAX) h = [h[0], ...h.slice(h.length - HISTORY_MAX + 1)];
  localStorage.setItem(HISTORY_KEY, JSON.stringify(h));
}

function pinned() {
  const p = localStorage.getItem(PIN_KEY);
  return p && /^[0-9a-f]{64}$/.test(p) ? p : null;
}

let certCache = null;
async function checkpointCert() {
  if (certCache === null) {
    const c = await api("/v1/journal/certificate");
    certCache = b64d(c.certificate);
  }
  return certCache;
}

// The latest checkpoint, its signature checked here: {ck, v} (v from verifyCheckpoint).
async function latestCheckpoint() {
  const [ck, cert] = await Promise.all([api("/v1/journal/checkpoint"), checkpointCert()]);
  const v = await verifyCheckpoint(b64d(ck.envelope), cert, pinned());
  return { ck, v };
}

function keyWords(v) {
  if (v.signature !== "verified")
    return "signature NOT verified in this browser: " + v.why + " — the gateway's word";
  return "signature verified here (" + v.alg + ") with " + (v.keySource === "pinned" ?
    "the key you pinned" : "the key the gateway gave (its word; pin it on the Checkpoints page)");
}

let witnessResult = null;
// Checks the newest checkpoint against the oldest kept one, then keeps it.
async function witness() {
  const banner = $("#witness");
  banner.hidden = false;
  banner.dataset.status = "pending";
  banner.textContent = "Witness: checking the journal's newest checkpoint against the ones this browser kept…";
  try {
    const { ck, v } = await latestCheckpoint();
    const cert = await checkpointCert();
    const hist = loadHistory();
    const p = v.payload;
    let grew = "";
    if (hist.length > 0) {
      const old = hist[0];
      const ov = await verifyCheckpoint(b64d(old.envelope), cert, pinned()).catch((e) => {
        throw new Error("the oldest kept checkpoint (size " + old.size + ") no longer verifies: " + e.message);
      });
      const op = ov.payload;
      if (op.origin !== p.origin)
        throw new Error("the kept checkpoints are of " + op.origin + ", this one of " + p.origin);
      if (op.size > p.size)
        throw new Error("the journal shrank: a kept checkpoint signed " + op.size +
          " records, the newest only " + p.size);
      let path = [];
      if (op.size !== p.size) {
        const pr = await api("/v1/journal/proof/consistency?first=" + op.size + "&second=" + p.size);
        path = pr.path.map(b64d);
      }
      await verifyConsistency(op.size, p.size, op.root, p.root, path);
      grew = "; consistent with the oldest kept checkpoint (" + op.size + " → " + p.size +
        " records, RFC 9162 proof checked here)";
    }
    const last = hist[hist.length - 1];
    if (!last || last.size !== p.size)
      hist.push({ size: p.size, t_ms: p.t_ms, origin: p.origin, root: hex(p.root), envelope: ck.envelope });
    saveHistory(hist);
    witnessResult = { ok: true, ck, v, kept: loadHistory().length };
    banner.dataset.status = v.signature === "verified" ? "verified" : "partial";
    banner.textContent = (v.signature === "verified" ? "✓ Witness: " : "⚠ Witness: ") +
      "checkpoint of " + p.size + " records, " + keyWords(v) + grew + ". " +
      plural(loadHistory().length, "checkpoint") + " kept in this browser.";
  } catch (e) {
    witnessResult = { ok: false, error: apiMessage(e) };
    banner.dataset.status = e instanceof ApiError ? "error" : "failed";
    banner.textContent = (e instanceof ApiError ? "Witness: " : "✗ Witness FAILED: ") + apiMessage(e);
  }
  return witnessResult;
}

// Search.

function searchQuery(params) {
  const q = new URLSearchParams();
  for (const k of ["subject", "consumer", "dept", "item", "kind", "code"])
    if (params.get(k)) q.set(k, params.get(k));
  for (const [k, api_k] of [["since", "since_ms"], ["until", "until_ms"]]) {
    const v = params.get(k);
    if (v) {
      const t = new Date(v).getTime();
      if (Number.isNaN(t)) throw new Error("the " + k + " time is not a date and time");
      q.set(api_k, String(t));
    }
  }
  q.set("limit", params.get("limit") || "100");
  if (params.get("after")) q.set("after", params.get("after"));
  return q;
}

function fillSearchForm(params) {
  for (const k of SEARCH_FIELDS) {
    const f = $("#f-" + k);
    if (f) f.value = params.get(k) || (k === "limit" ? "100" : "");
  }
}

function searchHash(params) {
  const q = new URLSearchParams();
  for (const [k, v] of params) if (v) q.set(k, v);
  return "#/search?" + q.toString();
}

async function showSearch(params) {
  fillSearchForm(params);
  const status = $("#search-status"), table = $("#results"), tbody = table.tBodies[0];
  const any = SEARCH_FIELDS.concat(["after"]).some((k) => k !== "limit" && params.get(k));
  $("#page-next").hidden = $("#page-first").hidden = true;
  if (!any && !params.has("run")) {
    table.hidden = true;
    setStatus(status, "Fill in any of the fields, or none, and search.");
    return;
  }
  let q;
  try {
    q = searchQuery(params);
  } catch (e) {
    setStatus(status, e.message, "error");
    return;
  }
  setStatus(status, "Searching…");
  table.dataset.state = "loading";
  let ans;
  try {
    ans = await api("/v1/journal/records?" + q.toString());
  } catch (e) {
    table.hidden = true;
    setStatus(status, apiMessage(e), "error");
    return;
  }
  tbody.replaceChildren();
  for (const r of ans.records) {
    const rec = r.record || {};
    const tr = el("tr", { "data-seq": String(r.seq) },
      el("td", {}, el("a", { href: "#/record?seq=" + r.seq + "&from=" + encodeURIComponent(location.hash),
        "aria-label": "Record " + r.seq + ", verify" }, String(r.seq))),
      el("td", { text: fmtTime(rec.t_ms) }),
      el("td", { text: rec.kind || "" }),
      el("td", { text: rec.consumer || "" }),
      el("td", { text: rec.bundle || "" }),
      el("td", { text: (rec.item || "") +
        (rec.predicate ? " (" + (rec.predicate.field || "") + " " + (rec.predicate.op || "") + ")" : "") }),
      el("td", { text: rec.dept || "" }),
      el("td", { class: rec.decision === "deny" ? "deny" : "", text: rec.decision || "" }),
      el("td", { text: rec.code || "" }));
    tbody.append(tr);
  }
  table.hidden = false;
  // Which query the rows answer: a page that waits for a search knows it is this one's.
  table.dataset.query = q.toString();
  table.dataset.state = "done";
  const first = params.get("after") ? " after seq " + params.get("after") : "";
  $("#results-caption").textContent = plural(ans.records.length, "record") + first +
    (ans.next !== null ? " (more on the next page)" : "");
  setStatus(status, ans.records.length === 0 ? "No record matches." :
    plural(ans.records.length, "record") + ". Open one to verify it in this browser.");
  if (ans.next !== null && ans.next !== undefined) {
    const n = new URLSearchParams(params);
    n.set("after", String(ans.next));
    $("#page-next").href = searchHash(n);
    $("#page-next").hidden = false;
  }
  if (params.get("after")) {
    const f = new URLSearchParams(params);
    f.delete("after");
    f.set("run", "1");
    $("#page-first").href = searchHash(f);
    $("#page-first").hidden = false;
  }
}

function bindSearchForm() {
  $("#codes").replaceChildren(...CODES.map((c) => el("option", { value: c })));
  $("#search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const k of SEARCH_FIELDS) {
      const v = $("#f-" + k).value.trim();
      if (v) p.set(k, v);
    }
    p.set("run", "1");
    const h = searchHash(p);
    if (location.hash === h) route();
    else location.hash = h;
  });
  $("#search-form").addEventListener("reset", () => {
    setTimeout(() => { location.hash = "#/search"; }, 0);
  });
}

// Record view.

function step(name, status, detail) {
  const li = el("li", { "data-status": status, "data-step": name },
    el("span", { class: "mark", text: status === "ok" ? "✓ verified" : status === "fail" ? "✗ FAILED" :
      status === "warn" ? "⚠ not verified here" : "…" }),
    " ",
    el("strong", { text: name }),
    el("div", { class: "detail", text: detail }));
  $("#steps").append(li);
  return li;
}

function valueText(k, v) {
  if (v instanceof Uint8Array) return hex(v);
  if (k === "t_ms" && typeof v === "number") return v + " (" + fmtTime(v) + ")";
  if (Array.isArray(v) || (v && typeof v === "object"))
    return JSON.stringify(v, (kk, vv) => vv instanceof Uint8Array ? hex(vv) : vv);
  return String(v);
}

async function showRecord(params) {
  const seq = Number(params.get("seq"));
  const verdict = $("#verdict");
  $("#steps").replaceChildren();
  $("#record-fields").tBodies[0].replaceChildren();
  $("#h-record").textContent = "Record " + (Number.isSafeInteger(seq) ? seq : "?");
  $("#record-back").href = params.get("from") || "#/search";
  verdict.dataset.status = "pending";
  verdict.textContent = "Checking in this browser…";
  const failed = (why) => {
    verdict.dataset.status = "failed";
    verdict.textContent = "✗ FAILED: " + why;
  };
  if (!Number.isSafeInteger(seq) || seq < 0) {
    failed("the address names no record (seq)");
    return;
  }
  let leaf, ck, v;
  try {
    const [la, latest] = await Promise.all([
      api("/v1/journal/leaves?start=" + seq + "&end=" + (seq + 1)), latestCheckpoint()
        .catch((e) => ({ error: e }))]);
    if (!Array.isArray(la.leaves) || la.leaves.length !== 1)
      throw new Error("the gateway sent " + (la.leaves || []).length + " records for one");
    leaf = b64d(la.leaves[0]);
    if (latest.error) {
      step("Checkpoint signature", "fail", apiMessage(latest.error));
      failed(apiMessage(latest.error));
      return;
    }
    ({ ck, v } = latest);
  } catch (e) {
    failed(apiMessage(e));
    return;
  }
  // 1. The bytes decode, are canonical, and say they are record seq.
  let rec;
  try {
    rec = decode(leaf);
  } catch (e) {
    step("Record bytes", "fail", "the record is not msgpack: " + e.message);
    failed("the record's bytes do not decode");
    return;
  }
  const tbody = $("#record-fields").tBodies[0];
  for (const k of Object.keys(rec))
    tbody.append(el("tr", {}, el("th", { scope: "row", text: k }), el("td", { text: valueText(k, rec[k]) })));
  if (!isCanonical(leaf)) {
    step("Record bytes", "fail", leaf.length + " bytes that are not canonical msgpack");
    failed("the record is not in canonical form");
    return;
  }
  if (rec.seq !== seq) {
    step("Record bytes", "fail", "the record says it is seq " + rec.seq + ", not " + seq);
    failed("the gateway sent another record than the one asked for");
    return;
  }
  step("Record bytes", "ok", leaf.length + " bytes of canonical msgpack; its seq is " + seq);
  const lh = await leafHash(leaf);
  step("Leaf hash", "ok", "SHA-256(0x00 ‖ record) = " + hex(lh));
  // 2. The checkpoint, signed.
  const p = v.payload;
  step("Checkpoint signature", v.signature === "verified" ? "ok" : "warn",
    "checkpoint of " + p.size + " records by " + p.origin + ", signed " + fmtTime(p.t_ms) +
    ", root " + hex(p.root) + "; " + keyWords(v) + "; key id " + short(v.kidHex));
  if (seq >= p.size) {
    verdict.dataset.status = "pending";
    verdict.textContent = "The newest signed checkpoint (" + p.size + " records) does not cover record " +
      seq + " yet; reload in a second.";
    return;
  }
  // 3. The inclusion proof leads from the leaf hash to the signed root.
  let root;
  try {
    const pr = await api("/v1/journal/proof/inclusion?seq=" + seq + "&size=" + p.size);
    if (pr.seq !== seq || pr.size !== p.size) throw new Error("the proof is for another record or size");
    root = await rootFromInclusion(lh, seq, p.size, pr.path.map(b64d));
    if (!equal(root, p.root))
      throw new Error("the inclusion proof leads to root " + short(hex(root)) +
        ", but the checkpoint signed " + short(hex(p.root)) + ": the record or its proof was altered");
    step("Inclusion proof", "ok", pr.path.length + " hashes (RFC 9162) lead from the leaf hash to the signed root " +
      hex(root));
  } catch (e) {
    step("Inclusion proof", "fail", apiMessage(e));
    failed(apiMessage(e));
    return;
  }
  if (v.signature === "verified") {
    verdict.dataset.status = "verified";
    verdict.textContent = "✓ Verified in this browser: record " + seq + " is in the journal of " + p.size +
      " records whose checkpoint " + p.origin + " signed" + (v.keySource === "pinned" ?
        " with the key you pinned." : " (with the key the gateway gave; pin it to make that your own check).");
  } else {
    verdict.dataset.status = "partial";
    verdict.textContent = "⚠ The inclusion proof was verified here, but the checkpoint's " + v.alg +
      " signature was not (" + v.why + "): the signed root is the gateway's word.";
  }
}

// Checkpoints view.

async function showCheckpoints() {
  const dl = $("#ck-latest");
  dl.replaceChildren(el("dt", { text: "Status" }), el("dd", { text: "Loading…" }));
  const w = await witness();
  dl.replaceChildren();
  const add = (k, val) => dl.append(el("dt", { text: k }), el("dd", { text: val }));
  if (w.ok) {
    const p = w.v.payload;
    add("Records", String(p.size));
    add("Root", hex(p.root));
    add("Signed at", fmtTime(p.t_ms));
    add("Origin", p.origin);
    add("Signature", keyWords(w.v));
    add("Key hash (kid)", w.v.kidHex);
    $("#pin-current").dataset.kid = w.v.kidHex;
  } else {
    add("Status", w.error);
  }
  const pin = pinned();
  $("#pin-status").textContent = pin ? "Pinned: " + pin : "No key pinned: signatures are checked with the key the gateway gives.";
  $("#pin-input").value = pin || "";
  const tb = $("#ck-history").tBodies[0];
  tb.replaceChildren(...loadHistory().map((h) => el("tr", {},
    el("td", { text: String(h.size) }), el("td", { text: fmtTime(h.t_ms) }),
    el("td", { class: "mono", text: short(h.root) }), el("td", { text: h.origin }))));
}

function bindCheckpoints() {
  $("#pin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = $("#pin-input").value.trim().toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(v)) {
      $("#pin-status").textContent = "A key hash is 64 hexadecimal digits.";
      return;
    }
    localStorage.setItem(PIN_KEY, v);
    showCheckpoints();
  });
  $("#pin-current").addEventListener("click", () => {
    const k = $("#pin-current").dataset.kid;
    if (k) localStorage.setItem(PIN_KEY, k);
    showCheckpoints();
  });
  $("#pin-clear").addEventListener("click", () => {
    localStorage.removeItem(PIN_KEY);
    showCheckpoints();
  });
  $("#ck-forget").addEventListener("click", () => {
    localStorage.removeItem(HISTORY_KEY);
    showCheckpoints();
  });
}

// Operations view.

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#7f7f7f", "#bcbd22", "#17becf"];
let charts = [];

function chartFigure(title, dim, s) {
  const fig = el("figure", { class: "chart" });
  const id = "chart-" + title.replace(/\W+/g, "-").toLowerCase();
  fig.append(el("figcaption", { id: id + "-cap", text: title + " (" + dim.total + " in all)" }));
  const box = el("div", { class: "plot", role: "img", "aria-labelledby": id + "-cap" });
  fig.append(box);
  const keys = Object.keys(dim.series).sort();
  const tb = el("tbody", {}, ...keys.map((k) => el("tr", {}, el("th", { scope: "row", text: k }),
    el("td", { text: String(dim.series[k].reduce((a, b) => a + b, 0)) }))));
  fig.append(el("details", {}, el("summary", { text: "As a table" }),
    el("table", { "data-chart": id }, el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Series" }),
      el("th", { scope: "col", text: "Count" }))), tb)));
  $("#ops-charts").append(fig);
  const xs = [];
  for (let i = 0; i < s.minutes; i++) xs.push((s.since_ms + i * s.minute_ms) / 1000);
  if (typeof window.uPlot !== "function") {
    box.textContent = "The chart library did not load; the table below holds the counts.";
    return;
  }
  const opts = {
    width: Math.max(280, box.clientWidth || 600),
    height: 200,
    series: [{}].concat(keys.map((k, i) => ({ label: k, stroke: PALETTE[i % PALETTE.length],
      width: 1.5, points: { show: false } }))),
    axes: [{}, { size: 40 }],
    scales: { x: { time: true } },
    legend: { live: false },
  };
  charts.push(new window.uPlot(opts, [xs].concat(keys.map((k) => dim.series[k])), box));
}

async function showOps(params) {
  const hours = params.get("hours") || "3";
  $("#ops-hours").value = hours;
  const status = $("#ops-status");
  setStatus(status, "Loading…");
  $("#ops-totals").hidden = true;
  for (const c of charts) c.destroy();
  charts = [];
  $("#ops-charts").replaceChildren();
  let s;
  try {
    s = await api("/v1/ops/summary?hours=" + encodeURIComponent(hours));
  } catch (e) {
    setStatus(status, apiMessage(e), "error");
    return;
  }
  $("#ops-exchanges").textContent = String(s.exchanges.total);
  $("#ops-items").textContent = String(s.items.total);
  $("#ops-denials").textContent = String(Object.values(s.denials).reduce((a, b) => a + b, 0));
  $("#ops-totals").hidden = false;
  setStatus(status, "From " + fmtTime(s.since_ms) + " to " + fmtTime(s.until_ms) + ", per minute. " +
    (s.complete ? s.scanned + " journal records read." :
      "Only the newest " + s.scanned + " records were read (the limit per request is " + s.scan_limit +
      "): the counts cover " + fmtTime(s.covered_from_ms) + " on."), s.complete ? "" : "warn");
  chartFigure("Exchanges per minute by bundle", s.exchanges, s);
  chartFigure("Department fetches per minute by department", s.items, s);
  chartFigure("Outcomes per minute by result code", s.codes, s);
  const ms = (us) => us === undefined ? "" : (us / 1000).toFixed(1);
  $("#ops-depts").tBodies[0].replaceChildren(...s.departments.map((d) => el("tr", { "data-dept": d.dept },
    el("th", { scope: "row", text: d.dept }), el("td", { text: String(d.items) }),
    el("td", { text: String(d.errors) }),
    el("td", { text: d.items ? (100 * d.errors / d.items).toFixed(1) + " %" : "" }),
    el("td", { text: ms(d.p50_us) }), el("td", { text: ms(d.p90_us) }),
    el("td", { text: ms(d.p99_us) }), el("td", { text: ms(d.max_us) }))));
  const den = Object.entries(s.denials).sort((a, b) => b[1] - a[1]);
  $("#ops-denials-table").tBodies[0].replaceChildren(...(den.length ? den.map(([c, n]) =>
    el("tr", { "data-code": c }, el("th", { scope: "row", text: c }), el("td", { text: String(n) }))) :
    [el("tr", {}, el("td", { colspan: "2", text: "No denial in this window." }))]));
}

function bindOps() {
  $("#ops-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const h = "#/ops?hours=" + $("#ops-hours").value;
    if (location.hash === h) route();
    else location.hash = h;
  });
}

// Citizen view.

const KIND_ZH = { item: "取得材料 fetched a record", exchange: "办理请求 request", deny: "被拒绝 refused",
  "audit-read": "查阅记录 read the journal", verify: "核验 checked a fact" };

async function showCitizen() {
  $("#c-status").textContent = "";
}

function bindCitizen() {
  $("#citizen-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = $("#c-token").value.trim();
    const status = $("#c-status"), table = $("#c-table");
    if (!token) {
      setStatus(status, "请粘贴同意令牌。Paste the consent token.", "error");
      return;
    }
    setStatus(status, "查询中… Loading…");
    table.hidden = true;
    let ans;
    try {
      ans = await api("/v1/subjects/me/accesses", { "Lianban-Consent": token });
    } catch (e) {
      setStatus(status, "未能取得访问记录。The report was refused: " + apiMessage(e), "error");
      return;
    } finally {
      // One token, one report: it is of no use any more.
      $("#c-token").value = "";
    }
    const tb = table.tBodies[0];
    tb.replaceChildren(...ans.accesses.map((a) => el("tr", { "data-seq": String(a.seq) },
      el("td", { text: fmtTime(a.t_ms) }),
      el("td", { text: a.consumer || (a.kind === "audit-read" ? "审计员 an auditor" : "") }),
      el("td", { text: a.bundle || "" }),
      el("td", { text: (a.item || "") + (a.kind ? " · " + (KIND_ZH[a.kind] || a.kind) : "") +
        (a.predicate ? " (" + (a.predicate.field || "") + " " + (a.predicate.op || "") + ")" : "") }),
      el("td", { text: a.dept || "" }),
      el("td", { class: a.decision === "deny" ? "deny" : "",
        text: a.decision === "deny" ? "已拒绝 refused (" + a.code + ")" : "已准许 allowed" }))));
    $("#c-caption").textContent = ans.accesses.length + " 条记录 records, 最新在前 newest first" +
      (ans.next !== null ? "; 更早的记录需要新的令牌 older ones need a new token" : "");
    table.hidden = false;
    setStatus(status, ans.accesses.length + " 条记录。" + ans.accesses.length + " records.", "done");
  });
}

// Routing.

const VIEWS = { search: showSearch, record: showRecord, checkpoints: showCheckpoints, ops: showOps,
  citizen: showCitizen };
const AUDITOR_VIEWS = new Set(["search", "record", "checkpoints"]);
let witnessed = false;
let lastView = null;

async function route() {
  const { view, params } = parseHash();
  const name = VIEWS[view] ? view : "search";
  document.body.classList.toggle("embed", params.get("embed") === "1");
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + name;
  for (const a of document.querySelectorAll("nav a"))
    if (a.dataset.view === (name === "record" ? "search" : name)) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  if (!AUDITOR_VIEWS.has(name)) $("#witness").hidden = true;
  if (lastView !== null && lastView !== location.hash) {
    const h = $("#view-" + name + " h1");
    if (h) h.focus();
  }
  lastView = location.hash;
  document.body.dataset.view = name;
  document.body.dataset.busy = "1";
  try {
    // The witness runs once per visit, before the first auditor view.
    if (AUDITOR_VIEWS.has(name) && !witnessed && name !== "checkpoints") {
      witnessed = true;
      await witness();
    } else if (AUDITOR_VIEWS.has(name) && witnessResult) {
      $("#witness").hidden = false;
    }
    if (name === "checkpoints") witnessed = true;
    await VIEWS[name](params);
  } finally {
    document.body.dataset.busy = "0";
  }
}

function start() {
  bindSearchForm();
  bindCheckpoints();
  bindOps();
  bindCitizen();
  window.addEventListener("hashchange", route);
  route();
}

// Exposed for tests and for the curious, in the page's console.
window.lianbanConsole = { decode, b64d, b64e, hex, leafHash, rootFromInclusion, verifyConsistency,
  verifyCheckpoint, BROWSER_ALGS, witness: () => witness() };

start();
