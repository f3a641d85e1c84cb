// it_console.js - the audit console in a real Chromium (docs/audit.md),
// driven by playwright-core with the test PKI's client certificates.
// tests/it_console.py starts the platform, makes the exchanges, runs this
// script with a JSON description of them, and checks what it reports
// against the API.  This script fails (exit 1) when the browser cannot
// start or a page does not reach the state the step waits for; it prints
// one JSON object of what the pages showed on its last line of output.
//
//   node tests/it_console.js CONFIG.json
//
// CONFIG: {base, chromium, modules, shots, subject, citizen_token,
//          certs: {auditor: [pem, key], admin: [...], citizen: [...]}}

"use strict";

const fs = require("fs");
const path = require("path");

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { chromium } = require(path.join(cfg.modules, "playwright-core"));

const WAIT = 20000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const out = { requests_elsewhere: [], page_errors: [] };

function log(msg) {
  process.stderr.write("it_console: " + msg + "\n");
}

async function context(browser, role, viewport) {
  const [certPath, keyPath] = cfg.certs[role];
  const ctx = await browser.newContext({
    viewport: viewport || DESKTOP,
    // The gateway's certificate is the demo PKI's; the page is still https.
    ignoreHTTPSErrors: true,
    clientCertificates: [{ origin: cfg.base, certPath, keyPath }],
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
  });
  ctx.setDefaultTimeout(WAIT);
  ctx.on("request", (r) => {
    if (!r.url().startsWith(cfg.base + "/") && !r.url().startsWith("data:"))
      out.requests_elsewhere.push(r.url());
  });
  ctx.on("page", (p) => {
    p.on("pageerror", (e) => out.page_errors.push(role + ": " + e.message));
    // Content-Security-Policy refusals and script errors; the 403 of a view
    // used with the wrong role is the browser's "Failed to load resource".
    p.on("console", (m) => {
      if (m.type() === "error" && !/Failed to load resource/.test(m.text()))
        out.page_errors.push(role + ": " + m.text());
    });
  });
  return ctx;
}

async function shot(page, name, fullPage) {
  fs.mkdirSync(cfg.shots, { recursive: true });
  await page.screenshot({ path: path.join(cfg.shots, name + ".png"), fullPage: !!fullPage });
}

async function idle(page) {
  await page.waitForFunction(() => document.body.dataset.busy === "0");
}

async function verdictOf(page) {
  await page.waitForFunction(() => {
    const v = document.querySelector("#verdict");
    return document.body.dataset.busy === "0" && v && v.dataset.status !== "pending";
  });
  return page.evaluate(() => ({
    status: document.querySelector("#verdict").dataset.status,
    text: document.querySelector("#verdict").textContent,
    steps: Array.from(document.querySelectorAll("#steps li")).map((li) =>
      ({ step: li.dataset.step, status: li.dataset.status, detail: li.querySelector(".detail").textContent })),
    fields: Object.fromEntries(Array.from(document.querySelectorAll("#record-fields tbody tr")).map((tr) =>
      [tr.querySelector("th").textContent, tr.querySelector("td").textContent])),
  }));
}

async function witnessOf(page) {
  await page.waitForFunction(() => {
    const w = document.querySelector("#witness");
    return document.body.dataset.busy === "0" && w && w.dataset.status !== "pending";
  });
  return page.evaluate(() => ({ status: document.querySelector("#witness").dataset.status,
    text: document.querySelector("#witness").textContent }));
}

// Flips the lowest bit of the last byte of the bytes base64url text s holds.
function flipB64(s) {
  const b = Buffer.from(s, "base64url");
  b[b.length - 1] ^= 0x01;
  return b.toString("base64url");
}

// Hands the page the gateway's answers to pattern with edit applied to their JSON.
async function tamper(page, pattern, edit) {
  await page.route(pattern, async (route) => {
    const resp = await route.fetch();
    const body = await resp.json();
    edit(body);
    await route.fulfill({ response: resp, body: JSON.stringify(body) });
  });
}

// Waits until the results table shows the answer of the query the test asked
// for (it holds every text of has and none of hasnt), not the one before it,
// and the page is idle.
async function searched(page, has, hasnt = []) {
  await page.waitForFunction(([h, n]) => {
    const t = document.querySelector("#results"), q = t.dataset.query || "";
    return t.dataset.state === "done" && document.body.dataset.busy === "0" &&
      h.every((s) => q.includes(s)) && !n.some((s) => q.includes(s));
  }, [has, hasnt]);
}

async function rows(page, sel) {
  return page.evaluate((s) => Array.from(document.querySelectorAll(s + " tbody tr")).map((tr) =>
    ({ seq: tr.dataset.seq, cells: Array.from(tr.children).map((c) => c.textContent) })), sel);
}

async function auditor(browser) {
  const ctx = await context(browser, "auditor");
  const page = await ctx.newPage();
  await page.goto(cfg.base + "/console/");
  await idle(page);
  out.first_witness = await witnessOf(page);

  // The search, typed with the keyboard: Tab from the top to the subject field.
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  let tabs = 0;
  while (tabs < 20 && await page.evaluate(() => document.activeElement.id) !== "f-subject") {
    await page.keyboard.press("Tab");
    tabs++;
  }
  out.tabs_to_subject = tabs;
  out.skip_link = await page.evaluate(() => document.querySelector("#skip").textContent);
  await page.keyboard.type(cfg.subject);
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelector("#results").dataset.state === "done" &&
    document.body.dataset.busy === "0");
  out.search_url = page.url();
  out.search_rows = await rows(page, "#results");
  out.labels_missing = await page.evaluate(() => Array.from(document.querySelectorAll("input, select, textarea"))
    .filter((i) => !(i.labels && i.labels.length) && !i.getAttribute("aria-label")).map((i) => i.id));
  await shot(page, "search");

  // Reloading the address gives the same search.
  await page.reload();
  await page.waitForFunction(() => document.querySelector("#results").dataset.state === "done" &&
    document.body.dataset.busy === "0");
  out.reload_rows = await rows(page, "#results");
  out.reload_subject = await page.inputValue("#f-subject");

  // A filtered search: kind and code.
  await page.goto(cfg.base + "/console/#/search?kind=deny&code=assurance_too_low&run=1");
  await searched(page, ["code=assurance_too_low"]);
  out.deny_rows = await rows(page, "#results");

  // Cursor paging: two records a page, the next page after the last one shown.
  await page.goto(cfg.base + "/console/#/search?kind=item&limit=2&run=1");
  await searched(page, ["kind=item", "limit=2"], ["after="]);
  out.page1 = await rows(page, "#results");
  out.page1_next = await page.isVisible("#page-next");
  await page.click("#page-next");
  await searched(page, ["after="]);
  out.page2 = await rows(page, "#results");
  out.page2_url = page.url();

  // A record: the first item record of the subject, opened with the keyboard.
  await page.goto(out.search_url);
  await page.waitForFunction(() => document.querySelector("#results").dataset.state === "done" &&
    document.body.dataset.busy === "0");
  const seq = out.search_rows.find((r) => r.cells[2] === "item").seq;
  out.record_seq = Number(seq);
  await page.focus('#results tr[data-seq="' + seq + '"] a');
  await page.keyboard.press("Enter");
  out.record = await verdictOf(page);
  await shot(page, "record-verified");

  // The same record with one bit of the inclusion proof flipped on its way.
  const tp = await ctx.newPage();
  await tamper(tp, "**/v1/journal/proof/inclusion?*", (b) => { b.path[0] = flipB64(b.path[0]); });
  await tp.goto(cfg.base + "/console/#/record?seq=" + seq);
  out.tampered_proof = await verdictOf(tp);
  await shot(tp, "record-tampered");
  await tp.close();

  // ... and with one bit of the record's bytes flipped.
  const tl = await ctx.newPage();
  await tamper(tl, "**/v1/journal/leaves?*", (b) => { b.leaves[0] = flipB64(b.leaves[0]); });
  await tl.goto(cfg.base + "/console/#/record?seq=" + seq);
  out.tampered_leaf = await verdictOf(tl);
  await tl.close();

  // The witness: the kept checkpoint is consistent with the newest ...
  const cp = await ctx.newPage();
  await cp.goto(cfg.base + "/console/#/checkpoints");
  out.witness = await witnessOf(cp);
  out.kept = await rows(cp, "#ck-history");
  await shot(cp, "checkpoints");
  // ... the key can be pinned, and a wrong pin fails every signature ...
  await cp.click("#pin-current");
  out.witness_pinned = await witnessOf(cp);
  await cp.fill("#pin-input", "00".repeat(32));
  await cp.press("#pin-input", "Enter");
  out.witness_wrong_pin = await witnessOf(cp);
  await cp.click("#pin-clear");
  await witnessOf(cp);
  await cp.close();
  // ... a rewritten journal (a proof that does not lead to the kept root) fails ...
  const cw = await ctx.newPage();
  await tamper(cw, "**/v1/journal/proof/consistency?*", (b) => { b.path[0] = flipB64(b.path[0]); });
  await cw.goto(cfg.base + "/console/#/checkpoints");
  out.witness_tampered = await witnessOf(cw);
  await cw.close();
  // ... and so does a checkpoint whose signature was altered.
  const cs = await ctx.newPage();
  await tamper(cs, "**/v1/journal/checkpoint", (b) => { b.envelope = flipB64(b.envelope); });
  await cs.goto(cfg.base + "/console/#/checkpoints");
  out.witness_bad_signature = await witnessOf(cs);
  await cs.close();

  // The operations view is the admin's.
  await page.goto(cfg.base + "/console/#/ops");
  await page.waitForFunction(() => document.body.dataset.busy === "0" &&
    document.querySelector("#ops-status").dataset.kind === "error");
  out.ops_as_auditor = await page.textContent("#ops-status");

  // Phone width: the search still fits.
  const phone = await context(browser, "auditor", PHONE);
  const pp = await phone.newPage();
  await pp.goto(out.search_url);
  await pp.waitForFunction(() => document.querySelector("#results").dataset.state === "done" &&
    document.body.dataset.busy === "0");
  out.phone_overflow = await pp.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  await shot(pp, "phone", true);
  await phone.close();
  await ctx.close();
}

async function citizen(browser) {
  const ctx = await context(browser, "citizen");
  const page = await ctx.newPage();
  await page.goto(cfg.base + "/console/#/citizen");
  await idle(page);
  await page.fill("#c-token", cfg.citizen_token);
  await page.click("#c-go");
  await page.waitForFunction(() => document.querySelector("#c-status").dataset.kind === "done" ||
    document.querySelector("#c-status").dataset.kind === "error");
  out.citizen_status = await page.textContent("#c-status");
  out.citizen_rows = await rows(page, "#c-table");
  out.citizen_headers = await page.evaluate(() =>
    Array.from(document.querySelectorAll("#c-table thead th")).map((t) => t.textContent));
  await shot(page, "citizen");
  await ctx.close();
}

async function ops(browser) {
  const ctx = await context(browser, "admin");
  const page = await ctx.newPage();
  await page.goto(cfg.base + "/console/#/ops?hours=1");
  await page.waitForFunction(() => document.body.dataset.busy === "0" &&
    !document.querySelector("#ops-totals").hidden);
  out.ops = await page.evaluate(() => ({
    exchanges: Number(document.querySelector("#ops-exchanges").textContent),
    items: Number(document.querySelector("#ops-items").textContent),
    denials: Number(document.querySelector("#ops-denials").textContent),
    canvases: document.querySelectorAll("#ops-charts canvas").length,
    depts: Object.fromEntries(Array.from(document.querySelectorAll("#ops-depts tbody tr")).map((tr) =>
      [tr.dataset.dept, { items: Number(tr.children[1].textContent), errors: Number(tr.children[2].textContent),
        p50: tr.children[4].textContent }])),
    denial_codes: Object.fromEntries(Array.from(document.querySelectorAll("#ops-denials-table tbody tr[data-code]"))
      .map((tr) => [tr.dataset.code, Number(tr.children[1].textContent)])),
    status: document.querySelector("#ops-status").textContent,
  }));
  await shot(page, "ops");
  await ctx.close();
}

async function main() {
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: cfg.chromium,
      headless: true,
      // Playwright gives every launch a fresh --user-data-dir of its own.
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      timeout: 30000,
    });
  } catch (e) {
    log("the browser did not start: " + e.message);
    process.exit(1);
  }
  try {
    out.browser = browser.version();
    const step = cfg.only || ["auditor", "citizen", "ops"];
    if (step.includes("ops")) await ops(browser);
    if (step.includes("auditor")) await auditor(browser);
    if (step.includes("citizen")) await citizen(browser);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  log("failed: " + (e.stack || e.message));
  process.exit(1);
});
