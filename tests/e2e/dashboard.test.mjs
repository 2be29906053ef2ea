// The dashboard end to end: real requests through `iris serve`, then the JSON endpoints behind
// the page (/api/usage, /api/requests) are checked for their documented shapes, and the page
// itself is driven in headless Chromium (Debian's chromium + playwright-core): it must show the
// requests, expand a row into its attempts, log no console errors and leave a screenshot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { startIris, postJson, repoRoot } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = path.join(repoRoot, 'tests/e2e/artifacts');
const BOUNDS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000];
let iris;
const sent = {};

const chat = (model, content = 'x') =>
  postJson(`${iris.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content }] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The request log is written asynchronously: poll until it holds what we sent.
async function usageWhen(pred, timeoutMs = 10000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${iris.url}/api/usage?since=${Date.now() - 3600e3}`);
    assert.equal(res.status, 200, await res.clone().text());
    const body = await res.json();
    if (pred(body) || Date.now() > end) return body;
    await sleep(100);
  }
}

// Opens the dashboard in headless Chromium, runs `check(page)`, and fails on any console
// error, page error or failed request along the way.
async function withDashboard(check) {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: install Debian's chromium package`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const problems = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
    await page.goto(`${iris.url}/`);
    await page.waitForSelector('html[data-loaded="true"]', { timeout: 15000 });
    fs.mkdirSync(artifacts, { recursive: true });
    await check(page);
  } finally {
    await browser.close();
  }
  assert.deepEqual(problems, []);
}

before(async () => {
  iris = await startIris();
  sent.chat1 = await chat('chat', 'dashboard one');
  sent.chat2 = await chat('chat', 'dashboard two');
  sent.vision = await chat('vision');          // two failed attempts, then a fallback that answers
  sent.failed = await chat('flaky-no-retry');  // an error (503, class overloaded)
  assert.equal(sent.chat1.status, 200, sent.chat1.text);
  assert.equal(sent.vision.status, 200, sent.vision.text);
  assert.equal(sent.failed.status, 503, sent.failed.text);
});
after(async () => { await iris?.stop(); });

const percentiles = (p) => {
  for (const k of ['p50', 'p90', 'p99']) assert.ok(p[k] === null || typeof p[k] === 'number', `${k}: ${p[k]}`);
};
function checkGroup(g) {
  for (const k of ['requests', 'errors', 'cost_usd', 'input_tokens', 'output_tokens', 'cached_tokens', 'reasoning_tokens']) {
    assert.equal(typeof g[k], 'number', `${k} in ${JSON.stringify(g)}`);
  }
  percentiles(g.latency_ms);
  percentiles(g.ttft_ms);
}

test('GET /api/usage has the documented shape and counts the requests', async () => {
  const u = await usageWhen((b) => b.totals?.requests >= 4);
  assert.equal(typeof u.since, 'number');
  assert.equal(typeof u.until, 'number');
  checkGroup(u.totals);
  assert.equal(u.totals.requests, 4);
  assert.equal(u.totals.errors, 1);
  assert.ok(u.totals.latency_ms.p50 > 0 && u.totals.latency_ms.p99 >= u.totals.latency_ms.p50);
  const costs = [sent.chat1, sent.chat2, sent.vision].map((r) => r.json.usage.cost ?? 0);
  assert.ok(Math.abs(u.totals.cost_usd - costs.reduce((a, b) => a + b, 0)) < 1e-9);
  for (const list of [u.by_day, u.by_model, u.by_provider]) {
    assert.ok(Array.isArray(list));
    for (const g of list) { assert.equal(typeof g.key, 'string'); checkGroup(g); }
  }
  assert.match(u.by_day[0].key, /^\d{4}-\d{2}-\d{2}$/);
  assert.equal(u.by_model.find((g) => g.key === 'openai/gpt-4o-mini')?.requests, 2);
  assert.equal(u.by_model.find((g) => g.key === 'anthropic/claude-haiku-4-5')?.requests, 1);
  // The failed request is attributed to the last target it tried (openai/flaky-2-b).
  assert.equal(u.by_provider.find((g) => g.key === 'openai')?.requests, 3);
  assert.equal(u.by_model.find((g) => g.key === 'openai/flaky-2-b')?.errors, 1);
  assert.deepEqual(u.errors_by_class.map((e) => [e.key, e.count]), [['overloaded', 1]]);
  for (const h of [u.latency_histogram, u.ttft_histogram]) {
    assert.deepEqual(h.bounds_ms, BOUNDS);
    assert.equal(h.counts.length, BOUNDS.length + 1);
  }
  assert.equal(u.latency_histogram.counts.reduce((a, b) => a + b, 0), 4);
  assert.ok(Array.isArray(u.rate) && u.rate.length > 0);
  assert.equal(u.rate.reduce((a, r) => a + r.requests, 0), 4);
  assert.equal(u.rate.reduce((a, r) => a + r.errors, 0), 1);
  for (const r of u.rate) assert.ok(typeof r.t === 'number' && r.t >= u.since - 86400e3 && r.t <= u.until);
});

test('GET /api/requests lists the requests newest first, with their attempts', async () => {
  await usageWhen((b) => b.totals?.requests >= 4);
  const res = await fetch(`${iris.url}/api/requests?limit=50`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.ok('next_before' in body);
  assert.equal(body.requests.length, 4);
  const starts = body.requests.map((r) => r.start_unix_ms);
  assert.deepEqual(starts, [...starts].sort((a, b) => b - a));
  const byId = new Map(body.requests.map((r) => [r.request_id, r]));
  const v = byId.get(sent.vision.json.iris.request_id);
  assert.ok(v, 'the fallback request is listed');
  for (const k of ['dialect', 'requested_model', 'route', 'provider', 'model']) assert.equal(typeof v[k], 'string', k);
  assert.equal(v.route, 'vision');
  assert.equal(v.provider, 'anthropic');
  assert.equal(v.http_status, 200);
  assert.equal(v.stream, false);
  assert.equal(typeof v.latency_ms, 'number');
  assert.equal(typeof v.overhead_ms, 'number');
  assert.ok(v.ttft_ms === null || typeof v.ttft_ms === 'number');
  for (const k of ['input_tokens', 'output_tokens', 'cached_tokens', 'cache_write_tokens', 'reasoning_tokens']) {
    assert.equal(typeof v.usage[k], 'number', k);
  }
  assert.deepEqual(v.attempts.map((a) => [a.n, a.provider, a.model, a.outcome]),
    [[1, 'openai', 'fail-500-v', 'error'], [2, 'openai', 'fail-500-v', 'error'],
     [3, 'anthropic', 'claude-haiku-4-5', 'ok']]);
  assert.deepEqual(v.attempts.slice(0, 2).map((a) => a.status), [500, 500]);
  for (const a of v.attempts) {
    assert.equal(typeof a.latency_ms, 'number');
    assert.ok(a.ttft_ms === null || typeof a.ttft_ms === 'number');
  }
  assert.equal(v.attempts[0].error_class, 'upstream');
  const f = body.requests.find((r) => r.http_status === 503);
  assert.equal(f.error_class, 'overloaded');
  assert.ok(f.error.length > 0);
  const one = await (await fetch(`${iris.url}/api/requests?limit=1`)).json();
  assert.equal(one.requests.length, 1);
  assert.equal(typeof one.next_before, 'number');
});

test('the dashboard assets are served from the binary', async () => {
  const page = await fetch(`${iris.url}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type'), /^text\/html/);
  assert.match(await page.text(), /<script src="\/app\.js">/);
  for (const [p, type] of [['/app.js', /javascript/], ['/style.css', /^text\/css/]]) {
    const r = await fetch(`${iris.url}${p}`);
    assert.equal(r.status, 200, p);
    assert.match(r.headers.get('content-type'), type);
    assert.equal(await r.text(), fs.readFileSync(path.join(repoRoot, 'web', p)).toString(), `${p} is the file in web/`);
  }
});

test('headless Chromium: the page shows the requests and their attempts, without errors', async () => {
  await usageWhen((b) => b.totals?.requests >= 4);
  await withDashboard(async (page) => {
    const kpi = page.locator('[data-kpi="requests"] .value');
    assert.equal((await kpi.textContent()).trim(), '4');
    assert.equal((await page.locator('[data-kpi="error_rate"] .value').textContent()).trim(), '25%');
    assert.ok(await page.locator('#banner').isHidden(), 'no error banner');

    const rows = page.locator('#requests tr.req');
    assert.equal(await rows.count(), 4);
    const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.requestId));
    for (const r of [sent.chat1, sent.chat2, sent.vision]) assert.ok(ids.includes(r.json.iris.request_id), ids.join());
    const tableText = await page.locator('#requests').textContent();
    assert.match(tableText, /openai\/gpt-4o-mini/);
    assert.match(tableText, /anthropic\/claude-haiku-4-5/);
    assert.match(tableText, /503/);

    // Expanding the fallback request shows its three attempts.
    const vid = sent.vision.json.iris.request_id;
    await page.locator(`#requests tr.req[data-request-id="${vid}"]`).click();
    const attempts = page.locator(`#requests tr[data-attempts-for="${vid}"] tr.attempt`);
    await attempts.first().waitFor();
    assert.equal(await attempts.count(), 3);
    assert.match(await attempts.nth(0).textContent(), /openai\/fail-500-v.*error.*500/);
    assert.match(await attempts.nth(2).textContent(), /anthropic\/claude-haiku-4-5.*ok/);

    // Charts drew something: bars in the rate chart and both histograms, spend by model listed.
    assert.ok(await page.locator('#chart-rate svg rect').count() > 0);
    assert.ok(await page.locator('#chart-latency svg rect').count() > 0);
    assert.match(await page.locator('#bars-model').textContent(), /openai\/gpt-4o-mini/);
    assert.match(await page.locator('#bars-errors').textContent(), /overloaded/);

    // A window change refetches without errors.
    await page.locator('[data-window="7d"]').click();
    await page.waitForFunction(() => document.querySelector('[data-kpi="requests"] .hint').textContent.includes('7 days'));
    await page.locator('[data-window="24h"]').click();
    await sleep(300);

    await page.screenshot({ path: path.join(artifacts, 'dashboard.png'), fullPage: true });
  });
});

test('the local model: /api/local counts a local answer, and the page draws its panel', async () => {
  const r = await postJson(`${iris.url}/v1/chat/completions`, {
    model: 'local/smolvlm2', max_tokens: 3, messages: [{ role: 'user', content: 'Hello' }],
  });
  assert.equal(r.status, 200, r.text);
  // (The answer reaches the caller as its last token is sampled; the engine retires the
  // sequence just after: a few tries while it does.)
  let res;
  let l;
  for (let i = 0; i < 50; i++) {
    res = await fetch(`${iris.url}/api/local`);
    assert.equal(res.status, 200);
    l = await res.json();
    if (l.completed === 1 && l.running === 0) break;
    await sleep(100);
  }
  assert.match(res.headers.get('content-type'), /^application\/json/);
  assert.equal(l.enabled, true);
  assert.equal(l.model, 'local/smolvlm2');
  assert.equal(l.completed, 1);
  assert.equal(l.output_tokens, r.json.usage.completion_tokens);
  assert.equal(l.running, 0);
  assert.equal(l.queued, 0);
  assert.equal(l.kv_blocks_in_use >= 0 && l.kv_blocks_total > 0 && l.kv_block_bytes > 0, true, JSON.stringify(l));
  assert.equal(l.max_batch, 8);
  // One sequence stepped alone: every step carried one sequence (prefill, then each token).
  assert.deepEqual(l.steps_by_sequences.map((b) => b.sequences), [1]);
  assert.equal(l.steps_by_sequences[0].steps, l.steps);
  assert.ok(l.steps >= r.json.usage.completion_tokens, JSON.stringify(l));
  // Step times in whole milliseconds, rounded up: every step took some.
  assert.ok(l.step_ms.p50 >= 1 && l.step_ms.p99 >= l.step_ms.p50 && l.step_ms.mean > 0, JSON.stringify(l));

  await withDashboard(async (page) => {
    assert.ok(await page.locator('#local').isVisible(), 'the local panel is shown');
    assert.equal((await page.locator('#local-model').textContent()).trim(), 'local/smolvlm2');
    assert.equal((await page.locator('[data-local="sequences"] .value').textContent()).trim(), '0 / 0');
    assert.match(await page.locator('#local-note').textContent(), /^1 answered/);
    assert.match((await page.locator('[data-local="step"] .value').textContent()).trim(), /^\d+ ms$/);
    assert.match(await page.locator('[data-local="step"] .hint').textContent(), /^p99 \d+ ms/);
    assert.equal(await page.locator('#chart-batch svg rect').count(), 1, 'one bar: steps of one sequence');
    await page.locator('#local').screenshot({ path: path.join(artifacts, 'dashboard-local.png') });
  });
});
