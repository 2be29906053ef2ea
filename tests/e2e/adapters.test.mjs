// LoRA adapters behind the gateway: iris.yaml names them under providers.local.adapters and a
// caller picks one with the model id local/smolvlm2:<name>. The adapter answers differently from
// the base model, exactly as `iris run --adapter` does; callers on the base and on the adapter
// share the engine at once without changing each other's answers; an unknown adapter is the
// caller's mistake (400, never retried on another target).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { startIris, postJson, repoRoot, tinyModel, irisBin } from './harness.mjs';

const adapterDir = path.join(repoRoot, 'tests/data/lora/tiny-256m-style');
let iris;
let openai;

before(async () => {
  iris = await startIris({
    yaml: () => `providers:
  local:
    kind: local
    model: ${tinyModel}
    threads: 2
    adapters:
      demo: ${adapterDir}
models:
  tuned: { targets: [local/smolvlm2:demo] }
`,
  });
  openai = new OpenAI({ baseURL: `${iris.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await iris?.stop(); });

const question = 'Name a colour.';
const ask = (model) => openai.chat.completions.create({ model, max_tokens: 10, messages: [{ role: 'user', content: question }] });

describe('adapters', () => {
  test('the server lists each adapter and says what it adapts', async () => {
    const listed = /adapter\s+local\/smolvlm2:demo\s+.*rank 4, 27 layers \(text, vision\)/;
    for (let i = 0; i < 50 && !listed.test(iris.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(iris.stderr(), listed);
    const models = await openai.models.list();
    const ids = models.data.map((m) => m.id);
    assert.ok(ids.includes('local/smolvlm2:demo'), ids.join(', '));
    assert.ok(ids.includes('local/smolvlm2'), ids.join(', '));
  });

  test('an adapter answers as iris run --adapter does, and not as the base model', async () => {
    const tuned = await ask('local/smolvlm2:demo');
    const base = await ask('local/smolvlm2');
    assert.equal(tuned.iris.provider, 'local');
    assert.equal(tuned.iris.model, 'smolvlm2:demo');
    assert.notEqual(tuned.choices[0].message.content, base.choices[0].message.content);
    const viaAlias = await ask('tuned');
    assert.equal(viaAlias.choices[0].message.content, tuned.choices[0].message.content);
    const cli = (args) => execFileSync(irisBin, ['run', '--model', tinyModel, '--max-tokens', '10', '--threads', '2', ...args, question], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    assert.equal(cli(['--adapter', adapterDir]), tuned.choices[0].message.content.trim());
    assert.equal(cli([]), base.choices[0].message.content.trim());
  });

  test('base and adapter requests at once answer as they do alone', async () => {
    const alone = {
      tuned: (await ask('local/smolvlm2:demo')).choices[0].message.content,
      base: (await ask('local/smolvlm2')).choices[0].message.content,
    };
    const models = ['local/smolvlm2:demo', 'local/smolvlm2', 'local/smolvlm2:demo', 'local/smolvlm2', 'local/smolvlm2:demo', 'local/smolvlm2'];
    const answers = await Promise.all(models.map(ask));
    answers.forEach((a, i) => {
      assert.equal(a.choices[0].message.content, models[i].endsWith(':demo') ? alone.tuned : alone.base, `request ${i} (${models[i]})`);
    });
  });

  test('an unknown adapter is a 400 naming those configured, with no attempt elsewhere', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'local/smolvlm2:nope', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /no adapter 'nope' \(configured: demo\)/);
    const long = await postJson(`${iris.url}/v1/chat/completions`, { model: `local/smolvlm2:${'x'.repeat(500)}`, messages: [{ role: 'user', content: 'x' }] });
    assert.ok(long.status >= 400 && long.status < 500, long.text);
    assert.ok(!long.text.includes('x'.repeat(100)), 'the caller\'s long name is not echoed whole');
    const other = await postJson(`${iris.url}/v1/chat/completions`, { model: 'local/other:demo', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(other.status, 400, other.text);
    assert.match(other.json.error.message, /the local model is local\/smolvlm2, not local\/other/);
  });
});
