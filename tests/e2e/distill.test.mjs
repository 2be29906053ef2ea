// Distillation: a route with store_bodies keeps each answered prompt and answer in the request
// log (in OpenAI's chat shape, whatever API the caller used, image URLs fetched into the
// data); `iris dataset export` turns the answers of one model into training JSONL (credentials
// redacted on request); `iris finetune --from-log` exports and trains in one step; the adapter
// it writes is served as local/smolvlm2:<name>. Routes without store_bodies keep no bodies.
// The server trains too (POST /admin/finetune, master key), and the dashboard draws the job's
// loss curve.
import { test, before, after, describe } from 'node:test';
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startIris, yamlFor, repoRoot, tinyModel, irisBin } from './harness.mjs';

const pngBase64 = fs.readFileSync(path.join(repoRoot, 'tests/data/smolvlm2/images/small.png')).toString('base64');
const secret = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123';
const master = 'distill-master-key-0123456789abcdef';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
let iris;
let openai;
let configPath;
// Image URLs in training data are cached here (by the CLI and by the server's jobs).
const imageCache = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-image-cache-'));

const cli = (args, env = {}) => spawnSync(irisBin, args, {
  encoding: 'utf8',
  env: { ...process.env, IRIS_DATA_DIR: iris.dir, FAKE_OPENAI_KEY: 'test-key', HF_HUB_OFFLINE: '1', XDG_CACHE_HOME: imageCache, ...env },
});

// The same, without blocking this process's event loop (a server here must answer meanwhile).
const cliAsync = (args, env = {}) => new Promise((resolve) => {
  const child = spawn(irisBin, args, {
    env: { ...process.env, IRIS_DATA_DIR: iris.dir, HF_HUB_OFFLINE: '1', XDG_CACHE_HOME: imageCache, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdout.resume();
  child.on('close', (status) => resolve({ status, stderr }));
});

before(async () => {
  const extra = `  distill:
    targets: [openai/gpt-4o-mini, local/smolvlm2]
    store_bodies: true
`;
  iris = await startIris({ yaml: (fakes) => yamlFor(fakes, { extra }), env: { IRIS_MASTER_KEY: master, XDG_CACHE_HOME: imageCache } });
  configPath = path.join(iris.dir, 'iris.yaml');
  openai = new OpenAI({ baseURL: `${iris.url}/v1`, apiKey: master, maxRetries: 0 });
});
after(async () => {
  await iris?.stop();
  fs.rmSync(imageCache, { recursive: true, force: true });
});

const answers = [];

describe('distillation from the gateway', () => {
  test('a store_bodies route answers as any other, in every API and streaming', async () => {
    const withImage = await openai.chat.completions.create({
      model: 'distill',
      messages: [{ role: 'system', content: 'Describe briefly.' }, { role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${pngBase64}` } }] }],
    });
    answers.push(withImage.choices[0].message.content);
    const byUrl = await openai.chat.completions.create({
      model: 'distill',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'and this?' }, { type: 'image_url', image_url: { url: `${iris.fakes.base}/_image.png` } }] }],
    });
    answers.push(byUrl.choices[0].message.content);
    const stream = await openai.chat.completions.create({ model: 'distill', stream: true, messages: [{ role: 'user', content: `my key is ${secret}` }] });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? '';
    answers.push(streamed);
    const anthropic = new Anthropic({ baseURL: iris.url, apiKey: master, maxRetries: 0 });
    const msg = await anthropic.messages.create({ model: 'distill', max_tokens: 50, system: 'Be kind.', messages: [{ role: 'user', content: 'hello there' }] });
    answers.push(msg.content[0].text);
    // Not trained on: a tool call, and a route that does not store bodies.
    await openai.chat.completions.create({ model: 'distill', messages: [{ role: 'user', content: 'weather?' }], tools: [{ type: 'function', function: { name: 'weather', parameters: { type: 'object', properties: {} } } }] });
    await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'not kept' }] });
    assert.match(answers[0], /I see 1 image/);
    assert.match(answers[1], /I see 1 image/);
    assert.match(streamed, /You said: my key is/);
  });

  test('iris dataset export writes the answers of one model as training conversations', async () => {
    const out = path.join(iris.dir, 'train.jsonl');
    let r;
    // (The request log writes in the background: a few tries while it catches up with all five
    // answers, the one with tools included.)
    for (let i = 0; i < 50; i++) {
      r = cli(['dataset', 'export', '--model', 'openai/gpt-4o-mini', '--since', '1h', '--out', out, '--config', configPath, '--redact-keys']);
      if (r.status === 0 && r.stderr.includes('from 5 stored answers')) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /4 examples \(2 images\) from 5 stored answers of openai\/gpt-4o-mini; skipped 1 with tools; 2 credentials redacted/);
    const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 4);
    for (const [i, l] of lines.entries()) {
      assert.match(l.id, /^req_/);
      const last = l.messages.at(-1);
      assert.equal(last.role, 'assistant');
      assert.equal(last.content, answers[i].replace(secret, '[REDACTED]'));
    }
    assert.deepEqual(lines[0].messages[0], { role: 'system', content: 'Describe briefly.' });
    assert.ok(lines[0].messages[1].content[1].image_url.url === `data:image/png;base64,${pngBase64}`, 'the inline image is kept as sent');
    // The URL was fetched for the log: the data holds the pixels, not the link.
    const fetched = lines[1].messages[0].content[1].image_url.url;
    assert.ok(fetched.startsWith('data:image/png;base64,'), fetched.slice(0, 80));
    assert.equal(Buffer.from(fetched.slice(22), 'base64').subarray(1, 4).toString(), 'PNG');
    const text = JSON.stringify(lines);
    assert.ok(!text.includes(secret), 'the caller\'s key is redacted');
    assert.match(lines[2].messages[0].content, /my key is \[REDACTED\]/);
    // The Anthropic caller's system prompt is a system turn.
    assert.deepEqual(lines[3].messages.slice(0, 2), [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: 'hello there' }]);
    assert.ok(!text.includes('not kept'), 'a route without store_bodies keeps nothing');

    // Without --redact-keys the text is as the caller wrote it.
    const plain = cli(['dataset', 'export', '--model', 'gpt-4o-mini', '--out', out, '--config', configPath]);
    assert.equal(plain.status, 0, plain.stderr);
    assert.ok(fs.readFileSync(out, 'utf8').includes(secret));
  });

  test('export errors say what to do', () => {
    const out = path.join(iris.dir, 'none.jsonl');
    const other = cli(['dataset', 'export', '--model', 'anthropic/claude-haiku-4-5', '--out', out, '--config', configPath]);
    assert.equal(other.status, 1);
    assert.match(other.stderr, /nothing to export: none of the 5 stored answers in this window is from anthropic\/claude-haiku-4-5/);
    const since = cli(['dataset', 'export', '--model', 'gpt-4o-mini', '--since', 'yesterday', '--out', out, '--config', configPath]);
    assert.equal(since.status, 2);
    assert.match(since.stderr, /--since yesterday: expected a duration/);
    const missing = cli(['dataset', 'export', '--model', 'gpt-4o-mini', '--out', out, '--store', path.join(iris.dir, 'nope.db')]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no request log at .*nope\.db/);
    const unwritable = cli(['dataset', 'export', '--model', 'gpt-4o-mini', '--out', '/nonexistent-dir/x.jsonl', '--config', configPath]);
    assert.notEqual(unwritable.status, 0);
    assert.match(unwritable.stderr, /cannot write \/nonexistent-dir\/x\.jsonl\.partial/);
  });

  test('iris finetune --from-log exports and trains; the adapter is served by name', async () => {
    const out = path.join(iris.dir, 'distilled');
    const r = cli(['finetune', '--model', tinyModel, '--from-log', 'openai/gpt-4o-mini', '--since', '1h', '--config', configPath,
      '--redact-keys', '--out', out, '--max-steps', '3', '--rank', '2', '--threads', '2']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /iris dataset: 4 examples/);
    assert.ok(fs.existsSync(path.join(out, 'adapter_model.safetensors')));
    assert.ok(fs.existsSync(path.join(out, 'adapter_config.json')));
    assert.equal(fs.readFileSync(path.join(out, 'from-log.jsonl'), 'utf8').trim().split('\n').length, 4);
    // --data and --from-log are one or the other.
    const both = cli(['finetune', '--model', tinyModel, '--from-log', 'x', '--data', 'y.jsonl', '--out', out]);
    assert.notEqual(both.status, 0);
    assert.match(both.stderr, /excludes/);

    const served = await startIris({
      yaml: () => `providers:
  local:
    kind: local
    model: ${tinyModel}
    threads: 2
    adapters:
      distilled: ${out}
models:
  vision: { targets: [local/smolvlm2:distilled] }
`,
    });
    try {
      const client = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const a = await client.chat.completions.create({ model: 'vision', max_tokens: 5, messages: [{ role: 'user', content: 'hello there' }] });
      assert.equal(a.iris.model, 'smolvlm2:distilled');
      assert.ok(a.choices[0].message.content.length > 0);
    } finally {
      await served.stop();
    }
  });

  test('image URLs in training data are fetched once under the image_fetch policy, then read from the cache', async () => {
    let served = 0;
    const png = fs.readFileSync(path.join(repoRoot, 'tests/data/smolvlm2/images/small.png'));
    const images = http.createServer((req, res) => {
      served++;
      res.writeHead(200, { 'content-type': 'image/png' });
      res.end(png);
    });
    await new Promise((r) => images.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${images.address().port}/cat.png?v=${Date.now()}`;
    const line = (text) => JSON.stringify({ messages: [
      { role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'What is this?' }] },
      { role: 'assistant', content: text }] });
    const data = path.join(iris.dir, 'urls.jsonl');
    fs.writeFileSync(data, `${line('A small picture.')}\n${line('A test image.')}\n`);
    const train = (out, ...more) => cliAsync(['finetune', '--model', tinyModel, '--data', data, '--out', path.join(iris.dir, out),
      '--max-steps', '2', '--rank', '2', '--threads', '2', ...more]);
    try {
      // Without --config: the default policy, public addresses only. Each line says why.
      const refused = await train('urls-refused');
      assert.notEqual(refused.status, 0);
      assert.match(refused.stderr, /urls\.jsonl:1: .*fetching the image at 127\.0\.0\.1/);
      assert.match(refused.stderr, /urls\.jsonl:2: /);
      assert.equal(served, 0);
      // With the gateway's iris.yaml (image_fetch.allow_private): fetched once for both lines.
      const r = await train('urls-a', '--config', configPath);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(served, 1);
      assert.ok(fs.existsSync(path.join(iris.dir, 'urls-a', 'adapter_model.safetensors')));
    } finally {
      await new Promise((r) => images.close(r));
    }
    // The image server is gone: a rerun under the same policy reads the cache, offline too;
    // the default policy (public addresses only) is not handed what a looser one fetched.
    const again = await train('urls-b', '--offline', '--config', configPath);
    assert.equal(again.status, 0, again.stderr);
    const stricter = await train('urls-c', '--offline');
    assert.notEqual(stricter.status, 0);
    assert.match(stricter.stderr, /urls\.jsonl:1: image 1: the image at 127\.0\.0\.1 is not in .* \(--offline\)/);
    // ... and so does a job in the server (its image_fetch policy, the same cache).
    const started = await fetch(`${iris.url}/admin/finetune`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${master}` },
      body: JSON.stringify({ name: 'from-urls', data, max_steps: 2, rank: 2 }),
    });
    assert.equal(started.status, 202, await started.clone().text());
    const { id } = await started.json();
    let view;
    for (let i = 0; i < 600; i++) {
      view = await (await fetch(`${iris.url}/admin/finetune/${id}`, { headers: { authorization: `Bearer ${master}` } })).json();
      if (['done', 'failed', 'cancelled'].includes(view.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(view.status, 'done', JSON.stringify(view));
    assert.equal(view.examples, 2);
  });

  test('POST /admin/finetune trains on the log in the server; the dashboard draws the loss curve', async () => {
    const post = (body, key = master) => fetch(`${iris.url}/admin/finetune`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body),
    });
    const get = (p) => fetch(`${iris.url}${p}`, { headers: { authorization: `Bearer ${master}` } });
    const job = { name: 'from-http', from_log: { model: 'openai/gpt-4o-mini', since: '1h' }, max_steps: 8, rank: 2, lr: 0.01 };
    assert.equal((await post(job, 'wrong-key')).status, 401);
    const bad = await post({ ...job, name: '../x' });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).error.message, /not a usable adapter name/);
    const started = await post(job);
    assert.equal(started.status, 202, await started.clone().text());
    const { id, status } = await started.json();
    assert.match(id, /^ft_[0-9a-f]{16}$/);
    assert.ok(['queued', 'exporting', 'loading', 'training', 'done'].includes(status), status);
    let view;
    for (let i = 0; i < 600; i++) {
      view = await (await get(`/admin/finetune/${id}`)).json();
      if (['done', 'failed', 'cancelled'].includes(view.status)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(view.status, 'done', JSON.stringify(view));
    assert.equal(view.step, 8);
    assert.equal(view.examples, 4);
    assert.equal(view.points.length, 8);
    assert.ok(view.points.every((p) => p.loss > 0));
    assert.ok(fs.existsSync(path.join(iris.dir, 'adapters/from-http/adapter_model.safetensors')));
    // The name is taken now; an unknown job is a 404.
    assert.equal((await post(job)).status, 409);
    assert.equal((await fetch(`${iris.url}/admin/finetune/ft_nope`, { method: 'DELETE', headers: { authorization: `Bearer ${master}` } })).status, 404);
    const listed = await (await get('/api/finetune')).json();
    assert.equal(listed.data[0].id, id);
    assert.equal(listed.data[0].points.length, 8);

    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: install Debian's chromium package`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const problems = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.goto(`${iris.url}/`);
      await page.locator('#login').waitFor({ state: 'visible', timeout: 15000 });
      // (The page's first fetches are refused until it logs in: errors count from then on.)
      page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
      await page.fill('#master-key', master);
      await page.click('#login-form button');
      await page.waitForSelector('html[data-loaded="true"]', { timeout: 15000 });
      assert.ok(await page.locator('#finetune').isVisible(), 'the fine-tuning panel is shown');
      assert.equal((await page.locator('#finetune-name').textContent()).trim(), 'from-http');
      assert.equal((await page.locator('[data-finetune="status"] .value').textContent()).trim(), 'done');
      assert.equal((await page.locator('[data-finetune="step"] .value').textContent()).trim(), '8 / 8');
      assert.equal(await page.locator('#chart-loss svg path.loss-line').count(), 1);
      const d = await page.locator('#chart-loss svg path.loss-line').getAttribute('d');
      assert.equal((d.match(/[ML]/g) || []).length, 8, d);
      fs.mkdirSync(path.join(repoRoot, 'tests/e2e/artifacts'), { recursive: true });
      await page.locator('#finetune').screenshot({ path: path.join(repoRoot, 'tests/e2e/artifacts/dashboard-finetune.png') });
    } finally {
      await browser.close();
    }
    assert.deepEqual(problems, []);
  });
});
