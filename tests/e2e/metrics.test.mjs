// GET /metrics end to end: after real requests through `iris serve` (a success, a fallback and a
// failure) the Prometheus exposition counts them exactly, and Prometheus's own checker
// (`promtool check metrics`, Debian's prometheus package) accepts it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { startIris, postJson } from './harness.mjs';

const PROMTOOL = process.env.PROMTOOL || '/usr/bin/promtool';
let iris;
const responses = {};

const chat = (model, content = 'x') =>
  postJson(`${iris.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content }] });

// Parses the text format into { 'name{labels}': value } (labels exactly as printed).
function parseExposition(text) {
  const samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    samples.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return samples;
}

async function scrape() {
  const res = await fetch(`${iris.url}/metrics`);
  assert.equal(res.status, 200);
  return { res, text: await res.text() };
}

// The summary is recorded as the response goes out; poll briefly rather than race it.
async function scrapeUntil(pred, timeoutMs = 3000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await scrape();
    const samples = parseExposition(s.text);
    if (pred(samples) || Date.now() > end) return { ...s, samples };
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  iris = await startIris();
  responses.chat1 = await chat('chat', 'one');
  responses.chat2 = await chat('chat', 'two');
  responses.vision = await chat('vision');          // openai/fail-500-v twice, then anthropic
  responses.failed = await chat('flaky-no-retry');  // one 503, no retry, no fallback
});
after(async () => { await iris?.stop(); });

test('the requests went the way the metrics below assume', () => {
  assert.equal(responses.chat1.status, 200, responses.chat1.text);
  assert.equal(responses.chat2.status, 200, responses.chat2.text);
  assert.equal(responses.vision.status, 200, responses.vision.text);
  assert.equal(responses.vision.json.iris.attempts.length, 3);
  assert.equal(responses.failed.status, 503, responses.failed.text);
  assert.equal(responses.failed.json.error.iris_error_class, 'overloaded');
});

test('GET /metrics counts requests, attempts, errors, tokens and cost exactly', async () => {
  const ok = 'iris_requests_total{route="chat",provider="openai",model="gpt-4o-mini",outcome="ok"}';
  const { res, text, samples } = await scrapeUntil((s) => s.get('iris_gateway_overhead_seconds_count') === 4);
  assert.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  const get = (k) => {
    assert.ok(samples.has(k), `missing ${k} in:\n${text}`);
    return samples.get(k);
  };
  assert.equal(get(ok), 2);
  assert.equal(get('iris_requests_total{route="vision",provider="anthropic",model="claude-haiku-4-5",outcome="ok"}'), 1);
  const failed = [...samples].filter(([k]) => k.startsWith('iris_requests_total{route="flaky-no-retry",') && k.endsWith('outcome="error"}'));
  assert.equal(failed.length, 1, text);
  assert.equal(failed[0][1], 1);
  assert.equal(get('iris_attempts_total{provider="openai",model="fail-500-v",outcome="error"}'), 2);
  assert.equal(get('iris_attempts_total{provider="anthropic",model="claude-haiku-4-5",outcome="ok"}'), 1);
  assert.equal(get('iris_attempts_total{provider="openai",model="flaky-2-b",outcome="error"}'), 1);
  assert.equal(get('iris_errors_total{class="overloaded"}'), 1);
  assert.equal(samples.has('iris_errors_total{class="upstream"}'), false, 'a fallback that succeeded is not an error');

  const u1 = responses.chat1.json.usage;
  const u2 = responses.chat2.json.usage;
  assert.equal(get('iris_tokens_total{provider="openai",model="gpt-4o-mini",type="input"}'), u1.prompt_tokens + u2.prompt_tokens);
  assert.equal(get('iris_tokens_total{provider="openai",model="gpt-4o-mini",type="output"}'), u1.completion_tokens + u2.completion_tokens);
  const cost = get('iris_cost_usd_total{provider="openai",model="gpt-4o-mini"}');
  assert.ok(Math.abs(cost - (u1.cost + u2.cost)) < 1e-12, `${cost} vs ${u1.cost + u2.cost}`);

  assert.equal(get('iris_request_duration_seconds_count{route="chat",provider="openai"}'), 2);
  assert.equal(get('iris_request_duration_seconds_bucket{route="chat",provider="openai",le="+Inf"}'), 2);
  assert.equal(get('iris_time_to_first_token_seconds_count{provider="openai",model="gpt-4o-mini"}'), 2);
  assert.equal(get('iris_gateway_overhead_seconds_bucket{le="+Inf"}'), 4);
  // Buckets are cumulative: never decreasing along le.
  const buckets = [...samples].filter(([k]) => k.startsWith('iris_gateway_overhead_seconds_bucket')).map(([, v]) => v);
  assert.deepEqual(buckets, [...buckets].sort((a, b) => a - b));
});

test('scrape-time gauges: breakers, HTTP, request log and local engine', async () => {
  const { text, samples } = await scrapeUntil(() => true);
  for (const family of ['iris_circuit_breaker_state gauge', 'iris_http_connections_open gauge',
    'iris_http_requests_in_flight gauge', 'iris_request_log_queue_depth gauge',
    'iris_request_log_dropped_total counter', 'iris_request_log_written_total counter',
    'iris_local_queue_depth gauge', 'iris_local_running gauge',
    'iris_local_output_tokens_total counter', 'iris_local_decode_tokens_per_second gauge',
    'iris_local_batch_sequences histogram', 'iris_local_step_seconds histogram']) {
    assert.ok(text.includes(`# TYPE ${family}\n`), `no "# TYPE ${family}" in:\n${text}`);
  }
  // Two failures of fail-500-v are below the threshold of 3: still closed. The scrape itself is
  // a request in flight on an open connection.
  assert.equal(samples.get('iris_circuit_breaker_state{target="openai/fail-500-v"}'), 0);
  assert.ok(samples.get('iris_http_connections_open') >= 1);
  assert.ok(samples.get('iris_http_requests_in_flight') >= 1);
});

test('promtool check metrics accepts the exposition', async () => {
  assert.ok(fs.existsSync(PROMTOOL), `${PROMTOOL} not found: install Debian's prometheus package (apt-get install prometheus)`);
  const { text } = await scrape();
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(r.error, undefined, String(r.error));
  assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}\n--- exposition ---\n${text}`);
  assert.equal((r.stdout + r.stderr).trim(), '', `promtool complained:\n${r.stdout}${r.stderr}`);
});
