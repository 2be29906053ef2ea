// The AI SDK gateway protocol end to end: Vercel's own `@ai-sdk/gateway` client
// (createGateway({ baseURL: '<iris>/v4/ai' })) with the `ai` package's generateText,
// streamText, tools, an image and embeddings, through iris to fake upstreams; the model
// catalog; and one error of each type the client turns into its own error class.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  createGateway, GatewayAuthenticationError, GatewayInvalidRequestError, GatewayModelNotFoundError,
  GatewayRateLimitError, GatewayInternalServerError, GatewayForbiddenError,
} from '@ai-sdk/gateway';
import { generateText, streamText, embed, embedMany, tool, jsonSchema } from 'ai';
import { startIris, yamlFor, irisBin, repoRoot } from './harness.mjs';

const png = fs.readFileSync(path.join(repoRoot, 'tests/data/smolvlm2/images/small.png'));
const extra = `
  broken:
    targets: [openai/fail-500-gw]
    retries: 0
`;

describe('the AI SDK gateway protocol, open gateway', () => {
  let iris;
  let gateway;
  const lastBody = async (provider) => (await (await fetch(`${iris.fakes.base}/_last/${provider}`)).json()).body;

  before(async () => {
    iris = await startIris({ yaml: (f) => yamlFor(f, { extra }) });
    gateway = createGateway({ baseURL: `${iris.url}/v4/ai`, apiKey: 'unused' });
  });
  after(async () => { await iris?.stop(); });

  test('generateText answers with text, usage, cost and the iris report', async () => {
    const r = await generateText({ model: gateway('chat'), prompt: 'hello there', maxRetries: 0 });
    assert.match(r.text, /^Hello from openai\. You said: hello there/);
    assert.equal(r.finishReason, 'stop');
    assert.ok(r.usage.inputTokens > 0 && r.usage.outputTokens > 0, JSON.stringify(r.usage));
    assert.equal(r.providerMetadata.iris.provider, 'openai');
    assert.equal(r.providerMetadata.iris.route, 'chat');
    assert.match(r.providerMetadata.gateway.cost, /^0\.\d+$/);
    assert.ok(r.response.headers['x-iris-request-id']);
    const up = await lastBody('openai');
    assert.equal(up.model, 'gpt-4o-mini');
    assert.equal(up.messages.at(-1).content, 'hello there');
  });

  test('the v3 base URL the client defaults to works too, and sampling settings reach the upstream', async () => {
    const v3 = createGateway({ baseURL: `${iris.url}/v3/ai`, apiKey: 'unused' });
    const r = await generateText({
      model: v3('anthropic/claude-haiku-4-5'), system: 'be brief', prompt: 'hi', maxRetries: 0,
      maxOutputTokens: 33, temperature: 0.5, topP: 0.9, stopSequences: ['END'],
    });
    assert.match(r.text, /^Hello from anthropic/);
    const up = await lastBody('anthropic');
    assert.equal(JSON.stringify(up.system).includes('be brief'), true, JSON.stringify(up.system));
    assert.equal(up.max_tokens, 33);
    assert.equal(up.temperature, 0.5);
    assert.deepEqual(up.stop_sequences, ['END']);
  });

  test('streamText streams text parts and finishes with usage and the iris report', async () => {
    const r = streamText({ model: gateway('gemini/gemini-2.5-flash'), prompt: 'stream please', maxRetries: 0 });
    const pieces = [];
    for await (const piece of r.textStream) pieces.push(piece);
    assert.ok(pieces.length > 1, `streamed in ${pieces.length} piece(s)`);
    assert.match(pieces.join(''), /^Hello from gemini\. You said: stream please/);
    assert.equal(await r.finishReason, 'stop');
    assert.ok((await r.usage).outputTokens > 0);
    assert.equal((await r.providerMetadata).iris.provider, 'gemini');
  });

  test('tools: a call comes back as a typed tool call, and its result continues the conversation', async () => {
    const weather = tool({
      description: 'the weather in a city',
      inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
      execute: async ({ city }) => ({ city, sky: 'sunny' }),
    });
    for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5', 'gemini/gemini-2.5-flash']) {
      const r = await generateText({ model: gateway(model), prompt: 'weather in Paris?', tools: { weather }, stopWhen: ({ steps }) => steps.length >= 2, maxRetries: 0 });
      assert.equal(r.steps.length, 2, model);
      assert.deepEqual(r.steps[0].toolCalls.map((c) => [c.toolName, c.input]), [['weather', { city: 'Paris' }]], model);
      assert.match(r.text, /the tool said it is sunny/, model);
    }
    const streamed = streamText({ model: gateway('openai/gpt-4o-mini'), prompt: 'weather?', tools: { weather }, stopWhen: ({ steps }) => steps.length >= 2, maxRetries: 0 });
    const types = new Set();
    for await (const part of streamed.fullStream) types.add(part.type);
    for (const t of ['tool-input-start', 'tool-input-delta', 'tool-call', 'tool-result', 'text-delta', 'finish']) assert.ok(types.has(t), `${t} in ${[...types]}`);
    assert.match(await streamed.text, /the tool said it is sunny/);
  });

  test('an image reaches the upstream, as bytes or as a data URL', async () => {
    for (const image of [png, new URL(`data:image/png;base64,${png.toString('base64')}`)]) {
      const r = await generateText({
        model: gateway('anthropic/claude-haiku-4-5'), maxRetries: 0,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image', image, mediaType: 'image/png' }] }],
      });
      assert.match(r.text, /I see 1 image/);
    }
  });

  test('structured output: a JSON schema reaches an OpenAI upstream as response_format', async () => {
    const res = await fetch(`${iris.url}/v4/ai/language-model`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'ai-language-model-id': 'openai/gpt-4o-mini', 'ai-language-model-streaming': 'false', 'ai-language-model-specification-version': '3' },
      body: JSON.stringify({ prompt: [{ role: 'user', content: [{ type: 'text', text: 'a city' }] }], responseFormat: { type: 'json', name: 'city', schema: { type: 'object', properties: { name: { type: 'string' } } } } }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const up = await lastBody('openai');
    assert.equal(up.response_format.type, 'json_schema');
    assert.equal(up.response_format.json_schema.name, 'city');
  });

  test('providerOptions.gateway routes; options iris does not apply come back as warnings and a header', async () => {
    const r = await generateText({
      model: gateway('openai/fail-500-gw2'), prompt: 'route me', maxRetries: 0,
      providerOptions: { gateway: { models: ['mistral/mistral-small-latest'] }, anthropic: { effort: 'low' } },
    });
    assert.match(r.text, /^Hello from mistral/);
    const attempts = r.providerMetadata.iris.attempts.map((a) => `${a.provider}:${a.outcome}`);
    assert.deepEqual([attempts[0], attempts.at(-1)], ['openai:error', 'mistral:ok']);
    assert.deepEqual(r.warnings.map((w) => w.feature), ['providerOptions.anthropic.effort']);
    assert.equal(r.response.headers['x-iris-dropped-fields'], 'providerOptions.anthropic.effort');
    assert.match(r.providerMetadata.iris.warnings[0], /providerOptions\.anthropic\.effort was not applied/);
    const o = await generateText({ model: gateway('openai/gpt-4o-mini'), prompt: 'think', maxRetries: 0, providerOptions: { openai: { reasoningEffort: 'low' } } });
    assert.deepEqual(o.warnings, []);
    assert.equal((await lastBody('openai')).reasoning_effort, 'low');
  });

  test('providerOptions.anthropic.thinking reaches Anthropic, and the reasoning comes back', async () => {
    const options = { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } };
    const r = await generateText({ model: gateway('anthropic/claude-haiku-4-5'), prompt: 'think', maxOutputTokens: 4000, maxRetries: 0, providerOptions: options });
    assert.deepEqual((await lastBody('anthropic')).thinking, { type: 'enabled', budget_tokens: 1024 });
    assert.equal(r.reasoningText, 'Let me think about it.');
    assert.deepEqual(r.warnings, []);
    const s = streamText({ model: gateway('anthropic/claude-haiku-4-5'), prompt: 'think', maxOutputTokens: 4000, maxRetries: 0, providerOptions: options });
    const reasoning = [];
    for await (const part of s.fullStream) if (part.type === 'reasoning-delta') reasoning.push(part.text);
    assert.equal(reasoning.join(''), 'Let me think about it.');
    assert.match(await s.text, /^Hello from anthropic/);
  });

  test('providerOptions.anthropic.cacheControl on messages and tools reaches Anthropic as cache_control', async () => {
    const cache = { anthropic: { cacheControl: { type: 'ephemeral' } } };
    const messages = [
      { role: 'system', content: 'the long rules', providerOptions: { anthropic: { cacheControl: { type: 'ephemeral', ttl: '1h' } } } },
      { role: 'user', content: [{ type: 'text', text: 'the long document' }, { type: 'text', text: 'question?', providerOptions: cache }] },
    ];
    const tools = { lookup: tool({ description: 'Look up', inputSchema: jsonSchema({ type: 'object', properties: {} }), providerOptions: cache }) };
    const r = await generateText({ model: gateway('anthropic/claude-haiku-4-5'), messages, tools, toolChoice: 'none', maxRetries: 0 });
    const body = await lastBody('anthropic');
    assert.deepEqual(body.system, [{ type: 'text', text: 'the long rules', cache_control: { type: 'ephemeral', ttl: '1h' } }]);
    assert.equal(body.messages[0].content[0].cache_control, undefined);
    assert.deepEqual(body.messages[0].content[1].cache_control, { type: 'ephemeral' });
    assert.deepEqual(body.tools[0].cache_control, { type: 'ephemeral' });
    assert.deepEqual(r.warnings, []);
    // On the call: a breakpoint at the prompt's end, wherever that is.
    await generateText({ model: gateway('anthropic/claude-haiku-4-5'), prompt: 'hi', maxRetries: 0, providerOptions: { anthropic: { cacheControl: { type: 'ephemeral', ttl: '1h' } } } });
    assert.deepEqual((await lastBody('anthropic')).cache_control, { type: 'ephemeral', ttl: '1h' });
    // Elsewhere they have no place, and are named.
    const o = await generateText({ model: gateway('gemini/gemini-2.5-flash'), messages, maxRetries: 0 });
    assert.equal(o.response.headers['x-iris-dropped-fields'], 'cache_control');
  });

  test('embed and embedMany return the upstream vectors with usage', async () => {
    const one = await embed({ model: gateway.embeddingModel('openai/text-embedding-3-small'), value: 'alpha', maxRetries: 0 });
    assert.equal(one.embedding.length, 8);
    assert.ok(one.usage.tokens > 0);
    const many = await embedMany({ model: gateway.embeddingModel('gemini/gemini-embedding-001'), values: ['one', 'two', 'three'], maxRetries: 0, providerOptions: { google: { outputDimensionality: 3 } } });
    assert.deepEqual(many.embeddings.map((e) => e.length), [3, 3, 3]);
    assert.equal((await lastBody('gemini')).requests[0].outputDimensionality, 3);
  });

  test('getAvailableModels lists aliases and provider models with per-token prices', async () => {
    const { models } = await gateway.getAvailableModels();
    const byId = Object.fromEntries(models.map((m) => [m.id, m]));
    assert.ok(byId.chat, 'the chat alias is listed');
    assert.equal(byId.chat.specification.provider, 'iris');
    assert.match(byId.chat.description, /openai\/gpt-4o-mini/);
    assert.equal(Number(byId.chat.pricing.input), 0.15 / 1e6);
    assert.equal(byId['groq/llama-3.3-70b'].specification.provider, 'groq');
    assert.equal(byId['local/smolvlm2'].pricing.input, '0', 'the local model is free');
  });

  test('each failure is the client\'s own error class', async () => {
    await assert.rejects(generateText({ model: gateway('no-such-model'), prompt: 'x', maxRetries: 0 }),
      (e) => GatewayModelNotFoundError.isInstance(e) && e.statusCode === 404 && e.modelId === 'no-such-model');
    await assert.rejects(generateText({ model: gateway('broken'), prompt: 'x', maxRetries: 0 }),
      (e) => GatewayInternalServerError.isInstance(e) && e.statusCode === 502);
    await assert.rejects(generateText({ model: gateway('chat'), prompt: 'x', temperature: 7, maxRetries: 0 }),
      (e) => GatewayInvalidRequestError.isInstance(e) && /temperature: must be between 0 and 2/.test(e.message));
    await assert.rejects(generateText({
      model: gateway('chat'), maxRetries: 0,
      messages: [{ role: 'user', content: [{ type: 'file', data: Buffer.from('%PDF-1.4'), mediaType: 'application/pdf' }] }],
    }), (e) => GatewayInvalidRequestError.isInstance(e) && /only image files are supported/.test(e.message));
    // A failure in the middle of a stream arrives as the stream's error part.
    const errors = [];
    const s = streamText({ model: gateway('cut-mid'), prompt: 'x', maxRetries: 0, onError: ({ error }) => errors.push(error) });
    for await (const part of s.fullStream) void part;
    assert.equal(errors.length, 1);
    assert.equal(errors[0].type, 'internal_server_error');
    assert.match(errors[0].message, /closed mid-body/);
  });

  test('bad headers and bodies are a 400 naming the field', async () => {
    const post = (headers, body) => fetch(`${iris.url}/v4/ai/language-model`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const cases = [
      [{}, { prompt: [] }, /ai-language-model-id/],
      [{ 'ai-language-model-id': 'chat', 'ai-language-model-specification-version': '9' }, { prompt: [] }, /speaks versions 2 and 3/],
      [{ 'ai-language-model-id': 'chat', 'ai-language-model-streaming': 'maybe' }, { prompt: [] }, /ai-language-model-streaming/],
      [{ 'ai-language-model-id': 'chat' }, { prompt: [] }, /prompt: must contain at least one message/],
      [{ 'ai-language-model-id': 'chat' }, { prompt: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }], tools: [{ type: 'provider', id: 'openai.web_search', name: 'web', args: {} }] }, /provider-executed tools/],
      [{ 'ai-language-model-id': 'chat' }, { prompt: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }], providerOptions: { 'bad\r\nname': {} } }, /providerOptions/],
      [{ 'ai-language-model-id': 'bad model' }, { prompt: [{ role: 'user', content: [{ type: 'text', text: 'x' }] }] }, /model/],
    ];
    for (const [headers, body, want] of cases) {
      const res = await post(headers, body);
      const json = await res.json();
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.equal(json.error.type, 'invalid_request_error');
      assert.match(json.error.message, want);
    }
  });
});

describe('the AI SDK gateway protocol with keys', () => {
  let iris;
  let dataDir;
  const keys = {};
  const make = (args) => JSON.parse(spawnSync(irisBin, ['keys', ...args, '--json'], { env: { ...process.env, IRIS_DATA_DIR: dataDir } }).stdout.toString()).key;

  before(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-e2e-aigw-'));
    keys.team = make(['create', '--name', 'team']);
    keys.narrow = make(['create', '--name', 'narrow', '--models', 'chat']);
    keys.slow = make(['create', '--name', 'slow', '--rpm', '1']);
    iris = await startIris({ env: { IRIS_DATA_DIR: dataDir, IRIS_MASTER_KEY: 'e2e-master-key-0123456789abcdef' } });
  });
  after(async () => { await iris?.stop(); fs.rmSync(dataDir, { recursive: true, force: true }); });

  const gw = (apiKey) => createGateway({ baseURL: `${iris.url}/v4/ai`, apiKey });

  test('a key calls; a wrong key is GatewayAuthenticationError, for calls and for the catalog', async () => {
    const r = await generateText({ model: gw(keys.team)('chat'), prompt: 'hi', maxRetries: 0 });
    assert.match(r.text, /Hello from openai/);
    const wrong = gw('sk-iris-wrong-000000000000000000000000000000000');
    const prompt = [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }];
    await assert.rejects(wrong('chat').doGenerate({ prompt }),
      (e) => GatewayAuthenticationError.isInstance(e) && e.statusCode === 401);
    // (generateText replaces the class with its own "Unauthenticated request" error of that name.)
    await assert.rejects(generateText({ model: wrong('chat'), prompt: 'hi', maxRetries: 0 }),
      (e) => e.name === 'GatewayAuthenticationError');
    await assert.rejects(gw('sk-iris-wrong-000000000000000000000000000000000').getAvailableModels(),
      (e) => GatewayAuthenticationError.isInstance(e));
  });

  test('the catalog lists only the key\'s models; another model is GatewayForbiddenError', async () => {
    const { models } = await gw(keys.narrow).getAvailableModels();
    assert.deepEqual(models.map((m) => m.id), ['chat']);
    await assert.rejects(generateText({ model: gw(keys.narrow)('vision'), prompt: 'hi', maxRetries: 0 }),
      (e) => GatewayForbiddenError.isInstance(e) && e.statusCode === 403);
  });

  test('an empty RPM bucket is GatewayRateLimitError', async () => {
    await generateText({ model: gw(keys.slow)('chat'), prompt: 'hi', maxRetries: 0 });
    await assert.rejects(generateText({ model: gw(keys.slow)('chat'), prompt: 'hi', maxRetries: 0 }),
      (e) => GatewayRateLimitError.isInstance(e) && e.statusCode === 429);
  });
});
