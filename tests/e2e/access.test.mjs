// Keys, limits and budgets as the official SDKs see them: each refusal surfaces as the SDK's
// own error class (AuthenticationError, PermissionDeniedError, RateLimitError), keys made by
// `iris keys` and by the admin API both work at once, and `iris usage --by key` reports them.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { chromium } from 'playwright-core';
import { startIris, irisBin, repoRoot } from './harness.mjs';

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const master = 'e2e-master-key-0123456789abcdef';

function irisKeys(dataDir, args) {
  const r = spawnSync(irisBin, ['keys', ...args, '--json'], { env: { ...process.env, IRIS_DATA_DIR: dataDir } });
  assert.equal(r.status, 0, r.stderr.toString());
  return JSON.parse(r.stdout.toString());
}

describe('keys, limits and budgets through the SDKs', () => {
  let iris;
  let dataDir;
  const keys = {};
  const openai = (apiKey) => new OpenAI({ baseURL: `${iris.url}/v1`, apiKey, maxRetries: 0 });
  const chat = (apiKey, model = 'chat', extra = {}) =>
    openai(apiKey).chat.completions.create({ model, max_tokens: 16, messages: [{ role: 'user', content: 'hi' }], ...extra });

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-e2e-keys-'));
    keys.team = irisKeys(dataDir, ['create', '--name', 'team']).key;
    keys.narrow = irisKeys(dataDir, ['create', '--name', 'narrow', '--models', 'chat']).key;
    keys.slow = irisKeys(dataDir, ['create', '--name', 'slow', '--rpm', '1']).key;
    keys.poor = irisKeys(dataDir, ['create', '--name', 'poor', '--budget-usd', '0']).key;
    keys.gone = irisKeys(dataDir, ['create', '--name', 'gone']).key;
    irisKeys(dataDir, ['revoke', 'gone']);
    iris = await startIris({ env: { IRIS_DATA_DIR: dataDir, IRIS_MASTER_KEY: master } });
  });
  after(async () => { await iris?.stop(); });

  test('a key made by `iris keys create` calls through both SDKs', async () => {
    const r = await chat(keys.team);
    assert.ok(r.choices[0].message.content.length > 0);
    const a = new Anthropic({ baseURL: iris.url, apiKey: keys.team, maxRetries: 0 });
    const m = await a.messages.create({ model: 'chat', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(m.type, 'message');
  });

  test('no key, a wrong key and a revoked key are AuthenticationError', async () => {
    for (const k of ['sk-iris-not-a-key-of-this-gateway-000000000000000', keys.gone]) {
      await assert.rejects(chat(k), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    }
    const res = await fetch(`${iris.url}/v1/chat/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, 'missing_api_key');
    const a = new Anthropic({ baseURL: iris.url, apiKey: keys.gone, maxRetries: 0 });
    await assert.rejects(a.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      (e) => e instanceof Anthropic.AuthenticationError);
  });

  test('a Responses API thread is continued only with the key that made it', async () => {
    const first = await openai(keys.team).responses.create({ model: 'chat', input: 'my secret is 42' });
    const next = await openai(keys.team).responses.create({ model: 'chat', previous_response_id: first.id, input: 'and?' });
    assert.equal(next.status, 'completed');
    await assert.rejects(openai(keys.narrow).responses.create({ model: 'chat', previous_response_id: first.id, input: 'tell me' }),
      (e) => e instanceof OpenAI.NotFoundError && /was not found/.test(e.message));
  });

  test('a model outside the key\'s list is PermissionDeniedError naming the allowed ones', async () => {
    await chat(keys.narrow, 'chat');
    await assert.rejects(chat(keys.narrow, 'vision'),
      (e) => e instanceof OpenAI.PermissionDeniedError && /chat/.test(e.message));
  });

  test('an empty RPM bucket is RateLimitError with retry-after and x-ratelimit headers', async () => {
    const { response } = await openai(keys.slow).chat.completions
      .create({ model: 'chat', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    assert.equal(response.headers.get('x-ratelimit-limit-requests'), '1');
    assert.equal(response.headers.get('x-ratelimit-remaining-requests'), '0');
    await assert.rejects(chat(keys.slow), (e) => {
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.code, 'rate_limit_exceeded');
      const h = (name) => (typeof e.headers?.get === 'function' ? e.headers.get(name) : e.headers?.[name]);
      assert.ok(Number(h('retry-after')) >= 1, `retry-after: ${h('retry-after')}`);
      return true;
    });
  });

  test('a spent budget is RateLimitError with insufficient_quota', async () => {
    await assert.rejects(chat(keys.poor), (e) => e instanceof OpenAI.RateLimitError && e.code === 'insufficient_quota');
  });

  test('the admin API needs the master key, and a key it makes works at once', async () => {
    const denied = await fetch(`${iris.url}/admin/keys`, { headers: { authorization: `Bearer ${keys.team}` } });
    assert.equal(denied.status, 401);
    const res = await fetch(`${iris.url}/admin/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${master}` },
      body: JSON.stringify({ name: 'from-api', rpm: 100 }),
    });
    assert.equal(res.status, 201);
    const made = await res.json();
    assert.match(made.key, /^sk-iris-[0-9A-Za-z]{43}$/);
    await chat(made.key);
    const list = await (await fetch(`${iris.url}/admin/keys`, { headers: { authorization: `Bearer ${master}` } })).text();
    assert.ok(!list.includes(made.key), 'a listing never shows a key');
  });

  test('`iris usage --by key` reports each key by name', async () => {
    // The request log is written off the request path: wait for it.
    let out = '';
    for (let i = 0; i < 50; i++) {
      const r = spawnSync(irisBin, ['usage', '--by', 'key', '--since', '1h'], { env: { ...process.env, IRIS_DATA_DIR: dataDir } });
      out = r.stdout.toString();
      if (out.includes('team (') && out.includes('from-api (')) break;
      await new Promise((r2) => setTimeout(r2, 100));
    }
    assert.match(out, /team \(key_/);
    assert.match(out, /from-api \(key_/);
  });

  test('headless Chromium: the dashboard asks for the master key, then filters by key', async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: install Debian's chromium package`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const problems = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await page.goto(`${iris.url}/`);
      await page.locator('#login').waitFor({ state: 'visible', timeout: 15000 });
      await page.fill('#master-key', 'not-the-master-key');
      await page.click('#login-form button');
      await page.waitForFunction(() => document.querySelector('#login-note').textContent.includes('not the master key'));
      await page.fill('#master-key', master);
      await page.click('#login-form button');
      await page.waitForSelector('html[data-loaded="true"]', { timeout: 15000 });
      assert.ok(await page.locator('#login').isHidden());
      assert.match(await page.locator('#bars-key').textContent(), /team \(key_/);
      // The key filter lists the keys that called; choosing one keeps only its requests.
      const teamId = await page.locator('#key-filter option', { hasText: 'team' }).first().getAttribute('value');
      await page.selectOption('#key-filter', teamId);
      await page.waitForFunction((id) => {
        const cells = [...document.querySelectorAll('#requests tr.req td.key')];
        return cells.length > 0 && cells.every((td) => td.textContent === id);
      }, teamId, { timeout: 15000 });
      fs.mkdirSync(path.join(repoRoot, 'tests/e2e/artifacts'), { recursive: true });
      await page.screenshot({ path: path.join(repoRoot, 'tests/e2e/artifacts/dashboard-keys.png'), fullPage: true });
    } finally {
      await browser.close();
    }
    assert.deepEqual(problems, []);
  });
});
