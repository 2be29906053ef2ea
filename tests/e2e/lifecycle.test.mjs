// `iris serve` as a process: graceful shutdown with requests in flight, config errors reported
// all at once, and the no-config start that enables providers from the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startIris, irisBin, readSse, tinyModel } from './harness.mjs';
import { startFakeHub } from './fake_hub.mjs';

// Every `iris serve` started here keeps its request log in a temporary directory.
process.env.IRIS_DATA_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-data-'));

test('SIGTERM lets a stream in flight finish, then refuses new connections', async () => {
  const iris = await startIris();
  try {
    const res = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'trickle', stream: true, messages: [{ role: 'user', content: 'one two three four five' }] }) });
    assert.equal(res.status, 200);
    const eventsPromise = readSse(res);
    await new Promise((r) => setTimeout(r, 150));
    iris.proc.kill('SIGTERM');
    const events = await eventsPromise;
    assert.equal(events.at(-1).data, '[DONE]');
    const text = events.filter((e) => e.data?.choices?.[0]?.delta?.content).map((e) => e.data.choices[0].delta.content).join('');
    assert.equal(text, 'Hello from openai. You said: one two three four five');
    const { code, signal } = await iris.exited;
    assert.equal(code, 0, `exit ${code} signal ${signal}:\n${iris.stderr()}`);
    await assert.rejects(fetch(`${iris.url}/healthz`));
    assert.match(iris.stderr(), /SIGTERM received/);
  } finally {
    await iris.stop();
  }
});

const waitFor = async (fn, ms = 5000) => {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('SIGHUP reloads iris.yaml for new requests; in-flight ones finish; a bad file changes nothing', async () => {
  const iris = await startIris();
  try {
    const configPath = path.join(iris.dir, 'iris.yaml');
    const ask = async (model) => {
      const r = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }) });
      return { status: r.status, json: await r.json() };
    };
    assert.equal((await ask('chat')).json.iris.provider, 'openai');
    const res = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'trickle', stream: true, messages: [{ role: 'user', content: 'one two three four five' }] }) });
    const inFlight = readSse(res);
    fs.writeFileSync(configPath, fs.readFileSync(configPath, 'utf8').replace('targets: [openai/gpt-4o-mini]', 'targets: [mistral/mistral-small-latest]'));
    iris.proc.kill('SIGHUP');
    await waitFor(() => /reloaded/.test(iris.stderr()));
    assert.equal((await ask('chat')).json.iris.provider, 'mistral');
    const events = await inFlight;
    assert.equal(events.at(-1).data, '[DONE]');
    // A broken file: the error is printed and the running configuration stays.
    const good = fs.readFileSync(configPath, 'utf8');
    fs.writeFileSync(configPath, good + '\nbogus_key: 1\n');
    iris.proc.kill('SIGHUP');
    await waitFor(() => /reload of .* failed/.test(iris.stderr()));
    assert.match(iris.stderr(), /bogus_key/);
    assert.equal((await ask('chat')).json.iris.provider, 'mistral');
    assert.equal((await fetch(`${iris.url}/healthz`)).status, 200);
  } finally {
    await iris.stop();
  }
});

test('a second SIGTERM exits at once instead of waiting for the drain', async () => {
  const iris = await startIris();
  try {
    const res = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'openai/stall-mid-x', stream: true, messages: [{ role: 'user', content: 'hi' }] }) });
    assert.equal(res.status, 200);
    const reader = res.body.getReader();
    reader.read().catch(() => {});  // the stream stays open: the drain has to wait for it
    iris.proc.kill('SIGTERM');
    await waitFor(() => /SIGTERM received/.test(iris.stderr()));
    const t0 = Date.now();
    iris.proc.kill('SIGTERM');
    const { code } = await iris.exited;
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    assert.equal(code, 130);
    assert.match(iris.stderr(), /second signal/);
  } finally {
    await iris.stop();
  }
});

test('config errors are all reported with key paths and the server does not start', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-cfg-'));
  const file = path.join(dir, 'iris.yaml');
  fs.writeFileSync(file, `
providers:
  openai: { kind: opnai }
  groq:   { kind: openai-compatible }
  leak:   { kind: openai, api_key: sk-live-123 }
models:
  vision: { targets: [antropic/claude-haiku-4-5] }
`);
  const r = spawnSync(irisBin, ['serve', '--config', file], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /providers\.openai\.kind/);
  assert.match(r.stderr, /providers\.groq\.base_url/);
  assert.match(r.stderr, /api_key_env/);
  assert.match(r.stderr, /models\.vision\.targets\[0\]/);
});

test('with no config, cloud providers come from the environment and a curl line is printed', async () => {
  const proc = spawn(irisBin, ['serve', '--listen', '127.0.0.1:0', '--model', 'none'], {
    env: { ...process.env, OPENAI_API_KEY: 'sk-test', ANTHROPIC_API_KEY: '', GEMINI_API_KEY: '', GOOGLE_API_KEY: '', MISTRAL_API_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => proc.on('exit', r));
  for (let i = 0; i < 100 && !/curl /.test(err); i++) await new Promise((r) => setTimeout(r, 100));
  proc.kill('SIGINT');
  await exited;
  assert.match(err, /provider openai/);
  assert.doesNotMatch(err, /provider anthropic/);
  assert.match(err, /curl http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);
});

test('the default local model, when it is not cached and the hub is offline, leaves the server up and says how to get it', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-hf-'));
  const proc = spawn(irisBin, ['serve', '--listen', '127.0.0.1:0', '--offline'], {
    env: { ...process.env, HF_HUB_CACHE: cache, OPENAI_API_KEY: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => proc.on('exit', r));
  const t0 = Date.now();
  for (let i = 0; i < 100 && !/listening on/.test(err); i++) await new Promise((r) => setTimeout(r, 100));
  const startMs = Date.now() - t0;
  proc.kill('SIGTERM');
  await exited;
  assert.match(err, /listening on/);
  assert.ok(startMs < 5000, `started in ${startMs} ms`);
  assert.match(err, /unavailable.*iris pull HuggingFaceTB\/SmolVLM2-256M-Video-Instruct/);
});

// Starts `iris serve` with the given args/env and resolves once it listens (or exits).
async function serve(args, env) {
  const proc = spawn(irisBin, ['serve', '--listen', '127.0.0.1:0', ...args], { env: { ...process.env, OPENAI_API_KEY: '', ANTHROPIC_API_KEY: '', GEMINI_API_KEY: '', GOOGLE_API_KEY: '', MISTRAL_API_KEY: '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const exited = new Promise((r) => proc.on('exit', r));
  const t0 = Date.now();
  let exitedEarly = false;
  exited.then(() => { exitedEarly = true; });
  while (!/listening on/.test(err) && !exitedEarly && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 50));
  const m = err.match(/listening on (http:\/\/\S+)/);
  return { proc, url: m?.[1], startMs: Date.now() - t0, stderr: () => err, async stop() { proc.kill('SIGTERM'); await exited; } };
}

test('on first start the default local model is pulled from the hub into the cache, then answers', async () => {
  const hub = await startFakeHub({ repo: 'HuggingFaceTB/SmolVLM2-256M-Video-Instruct', dir: tinyModel });
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-hf-'));
  const s = await serve([], { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache });
  try {
    assert.ok(s.url, s.stderr());
    assert.match(s.stderr(), /downloading it/);
    assert.ok(fs.existsSync(path.join(cache, 'models--HuggingFaceTB--SmolVLM2-256M-Video-Instruct', 'refs', 'main')));
    const r = await fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'local/smolvlm2', max_tokens: 3, messages: [{ role: 'user', content: 'Hi' }] }) });
    assert.equal(r.status, 200);
    assert.equal((await r.json()).iris.provider, 'local');
  } finally {
    await s.stop();
  }
  // The second start finds it in the cache and never asks the hub.
  const before = hub.log.length;
  const again = await serve([], { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache });
  await again.stop();
  assert.equal(hub.log.length, before);
  assert.doesNotMatch(again.stderr(), /downloading/);
  await hub.close();
});

test('an unreachable hub leaves the server up within seconds, saying the local model is unavailable', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-hf-'));
  const s = await serve([], { HF_ENDPOINT: 'http://127.0.0.1:9', HF_HUB_CACHE: cache });
  await s.stop();
  assert.ok(s.url, s.stderr());
  assert.ok(s.startMs < 10000, `started in ${s.startMs} ms`);
  assert.match(s.stderr(), /unavailable/);
  assert.match(s.stderr(), /iris pull/);
});

test('an explicit repo id that is not cached is an error that offers the pull command', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-hf-'));
  const r = spawnSync(irisBin, ['serve', '--listen', '127.0.0.1:0', '--model', 'HuggingFaceTB/SmolVLM2-500M-Video-Instruct'], { encoding: 'utf8', timeout: 20000, env: { ...process.env, HF_HUB_CACHE: cache } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /iris pull HuggingFaceTB\/SmolVLM2-500M-Video-Instruct/);
  assert.match(r.stderr, /--pull/);
});

// Sends n requests at once, then SIGTERM, then counts the store's rows with `iris usage`.
async function requestsSurviveShutdown(args, usageArgs) {
  const iris = await startIris({ args });
  const n = 200;
  try {
    const results = await Promise.all(Array.from({ length: n }, (_, i) => fetch(`${iris.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: i % 4 === 3 ? 'vision' : 'chat', messages: [{ role: 'user', content: `n${i}` }] }),
    }).then((r) => r.status)));
    assert.equal(results.filter((s) => s === 200).length, n);
    iris.proc.kill('SIGTERM');
    const { code } = await iris.exited;
    assert.equal(code, 0);
  } finally {
    await iris.stop();
  }
  const usage = spawnSync(irisBin, ['usage', ...usageArgs(iris.dir), '--since', 'all', '--json'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(usage.status, 0, usage.stderr);
  const report = JSON.parse(usage.stdout);
  assert.equal(report.totals.requests, n);
  assert.equal(report.totals.errors, 0);
  const byModel = Object.fromEntries(report.by_model.map((g) => [g.key, g.requests]));
  assert.equal(byModel['openai/gpt-4o-mini'], 150);
  assert.equal(byModel['anthropic/claude-haiku-4-5'], 50);
  // The table form, as a person reads it.
  const table = spawnSync(irisBin, ['usage', ...usageArgs(iris.dir), '--since', 'all', '--by', 'provider'], { encoding: 'utf8', timeout: 30000 });
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /openai/);
  assert.match(table.stdout, /anthropic/);
}

test('no request is lost on SIGTERM: N requests, N rows (SQLite)', async () => {
  await requestsSurviveShutdown([], (dir) => ['--db', path.join(dir, 'iris.db')]);
});

test('no request is lost on SIGTERM: N requests, N rows (PostgreSQL)', async () => {
  const { startPostgres } = await import('./postgres.mjs');
  const pg = await startPostgres();
  try {
    await requestsSurviveShutdown(['--db', pg.url], () => ['--store', pg.url]);
  } finally {
    await pg.stop();
  }
});
