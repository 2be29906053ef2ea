// POST /v1/embeddings end to end: the official `openai` SDK (which asks for base64 by default)
// and the AI SDK's embed/embedMany, through iris to fake OpenAI, Gemini, Mistral and
// OpenAI-compatible upstreams, with aliases, fallback, usage and cost.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { embed, embedMany } from 'ai';
import { startIris, yamlFor, postJson } from './harness.mjs';

let iris;
let openai;
const lastBody = async (provider) => (await (await fetch(`${iris.fakes.base}/_last/${provider}`)).json()).body;
// The fakes' vector for a text (fake_upstreams.mjs), as float32.
const fakeVector = (text, dims = 8) => {
  let h = 0;
  for (const c of String(text)) h = (h * 31 + c.codePointAt(0)) % 1000003;
  return Array.from(new Float32Array(Array.from({ length: dims }, (_, i) => ((h + i * 7919) % 1000) / 1000 - 0.5)));
};
const extra = `
  embed:
    targets: [openai/fail-500-embed, gemini/gemini-embedding-001]
    retries: 0
  embed-local:
    targets: [local/smolvlm2]
`;

before(async () => {
  iris = await startIris({ yaml: (f) => yamlFor(f, { extra }) });
  openai = new OpenAI({ baseURL: `${iris.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await iris?.stop(); });

test('the SDK default (base64) decodes to the upstream floats, with usage and cost', async () => {
  const r = await openai.embeddings.create({ model: 'openai/text-embedding-3-small', input: ['alpha', 'beta'] });
  assert.equal((await lastBody('openai')).encoding_format, 'float', 'iris asks upstreams for floats');
  assert.equal(r.data.length, 2);
  assert.deepEqual(Array.from(r.data[0].embedding), fakeVector('alpha'));
  assert.deepEqual(Array.from(r.data[1].embedding), fakeVector('beta'));
  assert.equal(r.model, 'text-embedding-3-small');
  assert.equal(r.usage.prompt_tokens, 3);  // ceil(5/4) + ceil(4/4), as the fake counts
  assert.ok(Math.abs(r.usage.cost - 3 * 0.02 / 1e6) < 1e-12, String(r.usage.cost));
  assert.equal(r.iris.provider, 'openai');
});

test('float output, dimensions, and token-array input reach OpenAI as sent', async () => {
  const r = await postJson(`${iris.url}/v1/embeddings`, { model: 'openai/text-embedding-3-large', input: [[1, 2, 3]], encoding_format: 'float', dimensions: 4 });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.data[0].embedding.length, 4);
  assert.deepEqual(r.json.data[0].embedding, fakeVector('1,2,3', 4));
  const body = await lastBody('openai');
  assert.deepEqual(body.input, [[1, 2, 3]]);
  assert.equal(body.dimensions, 4);
});

test('Gemini batchEmbedContents, Mistral and an OpenAI-compatible server answering out of order', async () => {
  const g = await openai.embeddings.create({ model: 'gemini/gemini-embedding-001', input: ['one', 'two', 'three'], dimensions: 3 });
  assert.deepEqual(g.data.map((d) => Array.from(d.embedding)), ['one', 'two', 'three'].map((t) => fakeVector(t, 3)));
  const gb = await lastBody('gemini');
  assert.equal(gb.requests.length, 3);
  assert.equal(gb.requests[0].outputDimensionality, 3);
  assert.equal(g.usage.cost, undefined, 'Gemini reports no usage: the cost is not guessed');
  const m = await openai.embeddings.create({ model: 'mistral/mistral-embed', input: 'bonjour' });
  assert.deepEqual(Array.from(m.data[0].embedding), fakeVector('bonjour'));
  const c = await openai.embeddings.create({ model: 'groq/llama-3.3-70b', input: ['a', 'b', 'c'], encoding_format: 'float' });
  assert.deepEqual(c.data.map((d) => d.index), [0, 1, 2]);
  assert.deepEqual(c.data.map((d) => d.embedding), ['a', 'b', 'c'].map((t) => fakeVector(t)));
});

test('an alias falls over from a failing provider to the next', async () => {
  const r = await openai.embeddings.create({ model: 'embed', input: 'fallback' });
  assert.deepEqual(Array.from(r.data[0].embedding), fakeVector('fallback'));
  assert.deepEqual(r.iris.attempts.map((a) => `${a.provider}:${a.outcome}`), ['openai:error', 'gemini:ok']);
});

test('what a provider cannot do is a clear 400, never a silent loss', async () => {
  const cases = [
    [{ model: 'embed-local', input: 'x' }, /the local model does not make embeddings/],
    [{ model: 'gemini/gemini-embedding-001', input: [[1, 2]] }, /Gemini takes embedding inputs as text/],
    [{ model: 'openai/text-embedding-3-small', input: ['ok', ''] }, /input\[1\]: must not be empty/],
    [{ model: 'openai/text-embedding-3-small', input: 'x', encoding_format: 'int8' }, /encoding_format: expected "float" or "base64"/],
    [{ model: 'openai/text-embedding-3-small', input: Array(2049).fill('x') }, /input: at most 2048 inputs/],
    [{ model: 'openai/text-embedding-3-small', input: ['x', 1] }, /input\[1\]: expected a string/],
  ];
  for (const [body, pattern] of cases) {
    const r = await postJson(`${iris.url}/v1/embeddings`, body);
    assert.equal(r.status, 400, `${JSON.stringify(body).slice(0, 80)}: ${r.text}`);
    assert.match(r.json.error.message, pattern);
  }
});

test('the AI SDK: embed and embedMany', async () => {
  const provider = createOpenAI({ baseURL: `${iris.url}/v1`, apiKey: 'unused' });
  const one = await embed({ model: provider.embedding('openai/text-embedding-3-small'), value: 'sunny day' });
  assert.deepEqual(one.embedding, fakeVector('sunny day'));
  const many = await embedMany({ model: provider.embedding('mistral/mistral-embed'), values: ['a', 'b'] });
  assert.deepEqual(many.embeddings, [fakeVector('a'), fakeVector('b')]);
  assert.ok(many.usage.tokens > 0);
});
