// Three `iris serve` processes behind no balancer, sharing one Redis (`state:`) and one
// PostgreSQL store: concurrent clients on one key with a $0.05 budget stop within the budget
// in total, and a key revoked through one instance's admin API is refused by all of them.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startIris, irisBin, postJson } from './harness.mjs';
import { startPostgres } from './postgres.mjs';

const master = 'e2e-master-key-0123456789abcdef';
const freePort = () => new Promise((resolve) => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

async function startRedis() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-redis-'));
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', 'yes', '--appendfsync', 'always'], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.end(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}/0`,
    async stop() {
      const exited = new Promise((r) => proc.on('exit', r));
      proc.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe('three instances, one Redis, one PostgreSQL', () => {
  let pg;
  let redis;
  const instances = [];
  let key;

  before(async () => {
    pg = await startPostgres();
    redis = await startRedis();
    const made = spawnSync(irisBin, ['keys', 'create', '--name', 'shared', '--budget-usd', '0.05', '--db', pg.url, '--json']);
    assert.equal(made.status, 0, made.stderr.toString());
    key = JSON.parse(made.stdout.toString()).key;
    // $10 per million tokens each way; max_tokens 64 makes every worst case above its real cost.
    const yaml = (fakes) => `
server: { listen: 127.0.0.1:0, threads: 2 }
store: ${pg.url}
state: ${redis.url}
providers:
  openai: { kind: openai, base_url: ${fakes.urls.openai}, api_key_env: FAKE_OPENAI_KEY }
models:
  chat: { targets: [openai/gpt-4o-mini], retries: 0 }
  page: { targets: [openai/latin1-error], retries: 0 }
pricing:
  gpt-4o-mini: { input_per_mtok: 10, output_per_mtok: 10 }
`;
    for (let i = 0; i < 3; i++) instances.push(await startIris({ yaml, env: { IRIS_MASTER_KEY: master } }));
  });
  after(async () => {
    for (const i of instances) await i.stop();
    await redis?.stop();
    await pg?.stop();
  });

  const chat = (i) => postJson(`${instances[i].url}/v1/chat/completions`,
    { model: 'chat', max_tokens: 64, messages: [{ role: 'user', content: 'Say hi.' }] },
    { authorization: `Bearer ${key}` });

  test('concurrent clients on one key stop within its $0.05 budget in total', async () => {
    let spent = 0;
    let answered = 0;
    const client = async (i) => {
      for (;;) {
        const r = await chat(i);
        if (r.status !== 200) {
          assert.equal(r.status, 429, r.text);
          // Spent, or held by the other clients' calls in flight.
          assert.ok(['insufficient_quota', 'budget_held'].includes(r.json.error.code), r.text);
          return;
        }
        answered++;
        spent += r.json.usage.cost;
      }
    };
    await Promise.all([0, 1, 2].flatMap((i) => [client(i), client(i), client(i), client(i)]));
    // Refusals while others were in flight may leave room: finish one call at a time. Alone,
    // a call is never held out by the last one's reservation (it waits for that to settle).
    for (let i = 0; ; i = (i + 1) % 3) {
      const r = await chat(i);
      if (r.status !== 200) {
        assert.equal(r.json.error.code, 'insufficient_quota', r.text);
        break;
      }
      answered++;
      spent += r.json.usage.cost;
    }
    console.log(`budget $0.05: ${answered} answers by 3 processes, $${spent.toFixed(6)} spent`);
    assert.ok(answered > 10);
    assert.ok(spent <= 0.05 + 1e-9, `spent ${spent}`);
    for (let i = 0; i < 3; i++) assert.equal((await chat(i)).status, 429);
  });

  test('a key revoked through one instance is refused by every instance within a second', async () => {
    const made = await postJson(`${instances[0].url}/admin/keys`, { name: 'short-lived' }, { authorization: `Bearer ${master}` });
    assert.equal(made.status, 201, made.text);
    const k = made.json.key;
    const call = (i) => postJson(`${instances[i].url}/v1/chat/completions`,
      { model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${k}` });
    for (let t = 0; t < 50 && (await call(2)).status !== 200; t++) await new Promise((r) => setTimeout(r, 50));
    const del = await fetch(`${instances[1].url}/admin/keys/${made.json.id}`, { method: 'DELETE', headers: { authorization: `Bearer ${master}` } });
    assert.equal(del.status, 200);
    const start = Date.now();
    let all = false;
    while (!all && Date.now() - start < 3000) {
      all = (await Promise.all([0, 1, 2].map(call))).every((r) => r.status === 401);
      if (!all) await new Promise((r) => setTimeout(r, 20));
    }
    const took = (Date.now() - start) / 1000;
    console.log(`revoked: refused by all 3 processes after ${took.toFixed(3)} s`);
    assert.ok(all);
    assert.ok(took <= 1.0, `took ${took} s`);
  });

  test("a provider's Latin-1 error page reaches the caller as UTF-8, and PostgreSQL keeps its request", async () => {
    const made = await postJson(`${instances[0].url}/admin/keys`, { name: 'pages' }, { authorization: `Bearer ${master}` });
    assert.equal(made.status, 201, made.text);
    const res = await fetch(`${instances[0].url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${made.json.key}` },
      body: JSON.stringify({ model: 'page', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.ok(res.status >= 500, String(res.status));
    // A strict decoder: a byte that is not UTF-8 throws here (fetch's text() would replace it).
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await res.arrayBuffer());
    const error = JSON.parse(text).error;
    assert.match(error.message, /Dienst nicht verf\uFFFDgbar/, error.message);
    // The request log's batch holding it was written (PostgreSQL refused such text whole).
    let row;
    for (let i = 0; i < 60 && !row; i++) {
      const list = await fetch(`${instances[1].url}/api/requests?limit=50`, { headers: { authorization: `Bearer ${master}` } });
      assert.equal(list.status, 200);
      row = (await list.json()).requests.find((r) => r.route === 'page');
      if (!row) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(row, 'the request is in the shared request log');
    assert.match(row.error, /verf\uFFFDgbar/, row.error);
  });
});
