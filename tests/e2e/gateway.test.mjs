// The gateway end to end: a real `iris serve` between real npm clients (openai,
// @anthropic-ai/sdk, ai) and fake provider upstreams that speak each provider's wire format.
// Routing, fallback, retries, the breaker, timeouts and cancellation are each proven here by a
// test that fails without them.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { generateText, streamText } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { startIris, postJson, readSse, repoRoot } from './harness.mjs';

let iris;
let openai;
let anthropic;
const pngBase64 = fs.readFileSync(path.join(repoRoot, 'tests/data/smolvlm2/images/small.png')).toString('base64');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fakeStats = async () => (await fetch(`${iris.fakes.base}/_stats`)).json();

before(async () => {
  iris = await startIris();
  openai = new OpenAI({ baseURL: `${iris.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  anthropic = new Anthropic({ baseURL: iris.url, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await iris?.stop(); });

describe('openai SDK', () => {
  test('chat, not streaming, through an alias', async () => {
    const r = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'ping' }] });
    assert.match(r.choices[0].message.content, /^Hello from openai\. You said: ping$/);
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.ok(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0);
    assert.equal(r.iris.provider, 'openai');
    assert.equal(r.iris.model, 'gpt-4o-mini');
    assert.equal(r.iris.route, 'chat');
    assert.equal(r.iris.attempts.length, 1);
    // gpt-4o-mini has a list price: the cost is computed from the usage, to the micro-dollar.
    const expected = (r.usage.prompt_tokens * 0.15 + r.usage.completion_tokens * 0.60) / 1e6;
    assert.ok(Math.abs(r.usage.cost - expected) < 1e-9, `${r.usage.cost} vs ${expected}`);
  });

  test('chat, streaming, with include_usage', async () => {
    const stream = await openai.chat.completions.create({
      model: 'openai/gpt-4o-mini', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'stream me' }],
    });
    let text = '';
    let usage;
    let irisInfo;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
      if (chunk.iris) irisInfo = chunk.iris;
    }
    assert.equal(text, 'Hello from openai. You said: stream me');
    assert.ok(usage && usage.completion_tokens > 0);
    assert.ok(irisInfo && irisInfo.provider === 'openai' && irisInfo.ttft_ms >= 0);
  });

  test('an image as a data URL', async () => {
    const r = await openai.chat.completions.create({
      model: 'anthropic/claude-haiku-4-5',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${pngBase64}` } }] }],
    });
    assert.match(r.choices[0].message.content, /I see 1 image/);
    const last = await (await fetch(`${iris.fakes.base}/_last/anthropic`)).json();
    const img = last.body.messages[0].content.find((b) => b.type === 'image');
    assert.equal(img.source.type, 'base64');
    assert.equal(img.source.media_type, 'image/png');
    assert.equal(img.source.data, pngBase64);
  });

  test('an image URL is fetched for a provider that needs the bytes (Gemini)', async () => {
    const r = await openai.chat.completions.create({
      model: 'gemini/gemini-2.5-flash',
      messages: [{ role: 'user', content: [{ type: 'text', text: 'what?' }, { type: 'image_url', image_url: { url: `${iris.fakes.base}/_image.png` } }] }],
    });
    assert.match(r.choices[0].message.content, /I see 1 image/);
    const last = await (await fetch(`${iris.fakes.base}/_last/gemini`)).json();
    const part = last.body.contents[0].parts.find((p) => p.inlineData);
    assert.equal(part.inlineData.mimeType, 'image/png');
    assert.ok(part.inlineData.data.startsWith('iVBORw0KGgo'));
  });

  test('an image URL that cannot be fetched is a clear 400', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, {
      model: 'gemini/gemini-2.5-flash',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${iris.fakes.base}/_nope.png` } }] }],
    });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /could not be fetched as an image/);
  });

  // Cost to the micro-dollar from each provider's own usage shape, streamed and not.
  const prices = { 'anthropic/claude-haiku-4-5': [1.0, 5.0], 'gemini/gemini-2.5-flash': [0.30, 2.50], 'mistral/mistral-small-latest': [0.10, 0.30] };
  for (const [model, [inPrice, outPrice]] of Object.entries(prices)) {
    for (const stream of [false, true]) {
      test(`cost of ${model}${stream ? ', streaming' : ''}`, async () => {
        let usage;
        if (stream) {
          const s = await openai.chat.completions.create({ model, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'price me' }] });
          for await (const c of s) if (c.usage) usage = c.usage;
        } else {
          usage = (await openai.chat.completions.create({ model, messages: [{ role: 'user', content: 'price me' }] })).usage;
        }
        assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens > 0);
        const expected = (usage.prompt_tokens * inPrice + usage.completion_tokens * outPrice) / 1e6;
        assert.ok(Math.abs(usage.cost - expected) < 1e-9, `${usage.cost} vs ${expected}`);
      });
    }
  }

  for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5', 'gemini/gemini-2.5-flash', 'mistral/mistral-small-latest']) {
    test(`tools round trip via ${model}`, async () => {
      const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
      const messages = [{ role: 'user', content: 'weather in Paris?' }];
      const r1 = await openai.chat.completions.create({ model, messages, tools });
      assert.equal(r1.choices[0].finish_reason, 'tool_calls');
      const call = r1.choices[0].message.tool_calls[0];
      assert.equal(call.function.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
      messages.push(r1.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"sky":"sunny"}' });
      const r2 = await openai.chat.completions.create({ model, messages, tools });
      assert.match(r2.choices[0].message.content, /the tool said it is sunny/);
    });
  }

  test('a tool conversation replayed without its tools still reaches Anthropic', async () => {
    const r = await openai.chat.completions.create({
      model: 'anthropic/claude-haiku-4-5',
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'sunny' },
      ],
    });
    assert.match(r.choices[0].message.content, /the tool said it is sunny/);
  });

  test('streamed tool calls', async () => {
    const stream = await openai.chat.completions.create({
      model: 'anthropic/claude-haiku-4-5', stream: true,
      tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } }],
      messages: [{ role: 'user', content: 'weather?' }],
    });
    let name = '';
    let args = '';
    let finish;
    for await (const chunk of stream) {
      const tc = chunk.choices[0]?.delta?.tool_calls?.[0];
      if (tc?.function?.name) name += tc.function.name;
      if (tc?.function?.arguments) args += tc.function.arguments;
      if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
    }
    assert.equal(name, 'get_weather');
    assert.deepEqual(JSON.parse(args), { city: 'Paris' });
    assert.equal(finish, 'tool_calls');
  });

  test('GET /v1/models lists aliases and provider models', async () => {
    const ids = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    assert.ok(ids.includes('vision') && ids.includes('chat'));
    assert.ok(ids.includes('groq/llama-3.3-70b'));
  });
});

describe('anthropic SDK against /v1/messages', () => {
  test('messages, not streaming, routed to Gemini', async () => {
    const r = await anthropic.messages.create({ model: 'gemini/gemini-2.5-flash', max_tokens: 64, system: 'terse', messages: [{ role: 'user', content: 'hi there' }] });
    assert.equal(r.type, 'message');
    assert.equal(r.content[0].type, 'text');
    assert.match(r.content[0].text, /Hello from gemini\. You said: hi there/);
    assert.equal(r.stop_reason, 'end_turn');
    const last = await (await fetch(`${iris.fakes.base}/_last/gemini`)).json();
    assert.equal(last.body.systemInstruction.parts[0].text, 'terse');
  });

  test('messages, streaming, routed to OpenAI', async () => {
    const stream = anthropic.messages.stream({ model: 'openai/gpt-4o-mini', max_tokens: 64, messages: [{ role: 'user', content: 'stream' }] });
    let text = '';
    stream.on('text', (t) => { text += t; });
    const final = await stream.finalMessage();
    assert.equal(text, 'Hello from openai. You said: stream');
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0);
  });

  test('tool use with an image', async () => {
    const r = await anthropic.messages.create({
      model: 'anthropic/claude-haiku-4-5', max_tokens: 64,
      tools: [{ name: 'get_weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }],
      messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: pngBase64 } }, { type: 'text', text: 'weather?' }] }],
    });
    assert.equal(r.stop_reason, 'tool_use');
    assert.equal(r.content[0].type, 'tool_use');
    assert.deepEqual(r.content[0].input, { city: 'Paris' });
  });

  test('models.list works with the Anthropic SDK too', async () => {
    const ids = [];
    for await (const m of anthropic.models.list()) ids.push(m.id);
    assert.ok(ids.includes('vision') && ids.includes('groq/llama-3.3-70b'));
  });

  test('errors come back in the Anthropic shape', async () => {
    await assert.rejects(
      anthropic.messages.create({ model: 'no-such-model-xyz', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
      (e) => e.status === 404 && e.error?.type === 'error' && e.error.error.type === 'not_found_error',
    );
  });
});

describe('Vercel AI SDK through @ai-sdk/openai-compatible', () => {
  const provider = () => createOpenAICompatible({ name: 'iris', baseURL: `${iris.url}/v1`, apiKey: 'unused', includeUsage: true });
  test('generateText', async () => {
    const { text, usage } = await generateText({ model: provider()('mistral/mistral-small-latest'), prompt: 'from ai sdk' });
    assert.equal(text, 'Hello from mistral. You said: from ai sdk');
    assert.ok(usage.outputTokens > 0);
  });
  test('streamText', async () => {
    const result = streamText({ model: provider()('groq/llama-3.3-70b'), prompt: 'streaming ai sdk' });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    assert.equal(text, 'Hello from compat. You said: streaming ai sdk');
  });
  test('providerOptions.gateway.order', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, {
      model: 'weighted', messages: [{ role: 'user', content: 'x' }],
      providerOptions: { gateway: { order: ['mistral'] } },
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.iris.provider, 'mistral');
  });
});

describe('routing and failure', () => {
  test('fallback: a 500 from the first target is retried, then the next target answers', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'vision', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.iris.provider, 'anthropic');
    const outcomes = r.json.iris.attempts.map((a) => `${a.provider}:${a.outcome}:${a.status ?? ''}`);
    assert.deepEqual(outcomes, ['openai:error:500', 'openai:error:500', 'anthropic:ok:']);
    assert.equal(r.headers.get('x-iris-provider'), 'anthropic');
    assert.equal(r.headers.get('x-iris-attempts'), '3');
  });

  test('retries: 503 twice, then success on the third try of the same target', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'flaky', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.iris.attempts.length, 3);
    assert.equal((await fakeStats()).requests['openai/flaky-2-a'], 3);
  });

  test('without retries the same fault reaches the caller, saying whose it was', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'flaky-no-retry', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 503);
    assert.equal(r.json.error.iris_error_class, 'overloaded');
    assert.equal(r.json.error.provider, 'openai');
    assert.equal(r.json.error.upstream_status, 503);
  });

  test('429 with retry-after is retried', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'ratelimited', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.iris.attempts.map((a) => a.status ?? 200), [429, 200]);
  });

  test('a 400 from an upstream is not retried', async () => {
    await postJson(`${iris.url}/v1/chat/completions`, { model: 'bad-request', messages: [{ role: 'user', content: 'x' }] });
    assert.equal((await fakeStats()).requests['openai/fail-400-a'], 1);
  });

  test('circuit breaker: after 3 failures the target is skipped without a request', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'breaker', messages: [{ role: 'user', content: 'x' }] });
      assert.equal(r.json.iris.provider, 'mistral');
    }
    const before = (await fakeStats()).requests['openai/fail-503-breaker'];
    assert.equal(before, 3);
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'breaker', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.json.iris.attempts[0].outcome, 'skipped');
    assert.equal((await fakeStats()).requests['openai/fail-503-breaker'], 3);
  });

  test('first_token_ms: a stall before headers falls over invisibly', async () => {
    const t0 = Date.now();
    const res = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'stall-first', stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    assert.equal(res.status, 200);
    const events = await readSse(res);
    const text = events.filter((e) => e.data?.choices?.[0]?.delta?.content).map((e) => e.data.choices[0].delta.content).join('');
    assert.equal(text, 'Hello from gemini. You said: x');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(events.at(-1).data, '[DONE]');
  });

  test('first_token_ms: headers and a role chunk but no token also fall over invisibly', async () => {
    const t0 = Date.now();
    const stream = await openai.chat.completions.create({ model: 'stall-first-token', stream: true, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    let info;
    for await (const c of stream) { text += c.choices[0]?.delta?.content ?? ''; if (c.iris) info = c.iris; }
    assert.equal(text, 'Hello from mistral. You said: x');
    assert.ok(Date.now() - t0 < 5000);
    assert.match(info.attempts[0].error, /no first token within 300 ms/);
  });

  test('idle_ms: a stall after the first token ends the stream with an error, never a clean end', async () => {
    const stream = await openai.chat.completions.create({ model: 'stall-mid', stream: true, messages: [{ role: 'user', content: 'x' }] });
    let text = '';
    await assert.rejects(async () => { for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''; });
    assert.equal(text, 'Hello ');
  });

  test('a connection cut mid-stream ends with an error event', async () => {
    const res = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'cut-mid', stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    const events = await readSse(res);
    assert.ok(events.at(-1).data.error, JSON.stringify(events.at(-1)));
    assert.ok(!events.some((e) => e.data === '[DONE]'));
  });

  test('a stream without its terminator is an error, in the Anthropic dialect too', async () => {
    const stream = anthropic.messages.stream({ model: 'no-terminator', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] });
    await assert.rejects(stream.finalMessage());
  });

  test('malformed SSE is an upstream error', async () => {
    const res = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'malformed-first', stream: true, messages: [{ role: 'user', content: 'x' }] }) });
    const text = await res.text();
    assert.match(text, /error/);
    assert.doesNotMatch(text, /\[DONE\]/);
  });

  test('total_ms bounds the whole request', async () => {
    const t0 = Date.now();
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'total-timeout', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 504, r.text);
    assert.ok(Date.now() - t0 < 3000);
  });

  test('a caller that disconnects cancels the upstream call', async () => {
    const ac = new AbortController();
    const res = await fetch(`${iris.url}/v1/chat/completions`, { method: 'POST', signal: ac.signal, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'trickle', stream: true, messages: [{ role: 'user', content: 'a b c d e f g h i j k l m n o p' }] }) });
    const reader = res.body.getReader();
    await reader.read();
    ac.abort();
    for (let i = 0; i < 50 && !(await fakeStats()).aborted['openai/trickle-100-a']; i++) await sleep(50);
    assert.equal((await fakeStats()).aborted['openai/trickle-100-a'], 1);
    // The request log says the caller left (not an upstream or gateway failure).
    let row;
    for (let i = 0; i < 50 && !row; i++) {
      const page = await (await fetch(`${iris.url}/api/requests?limit=50`)).json();
      row = page.requests.find((r) => r.route === 'trickle');
      if (!row) await sleep(100);
    }
    assert.equal(row?.error_class, 'client_gone');
  });
});

describe('local model', () => {
  test('answers text with usage and no cost', async () => {
    const r = await openai.chat.completions.create({ model: 'local/smolvlm2', max_tokens: 5, messages: [{ role: 'user', content: 'Hello' }] });
    assert.equal(r.iris.provider, 'local');
    assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 5);
    assert.equal(r.usage.cost, 0);
  });
  test('answers an image, streaming', async () => {
    const stream = await openai.chat.completions.create({
      model: 'local/smolvlm2', max_tokens: 4, stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${pngBase64}` } }, { type: 'text', text: 'What is this?' }] }],
    });
    let usage;
    for await (const c of stream) if (c.usage) usage = c.usage;
    assert.ok(usage.prompt_tokens > 64, `prompt ${usage.prompt_tokens} tokens should include the image`);
  });
  test('tools fall over from local to the next target', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, {
      model: 'local/smolvlm2', models: ['anthropic/claude-haiku-4-5'],
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      messages: [{ role: 'user', content: 'x' }],
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.iris.provider, 'anthropic');
    assert.match(r.json.iris.attempts[0].error, /tools/);
  });
});

describe('bad input', () => {
  test('malformed JSON is a 400 in the OpenAI shape', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, '{"model": ');
    assert.equal(r.status, 400);
    assert.equal(r.json.error.type, 'invalid_request_error');
  });
  test('unknown model is a 404 naming what exists', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'nope-model', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 404);
    assert.match(r.json.error.message, /vision/);
  });
  test('a provider without its key says so', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'nokey/gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] });
    assert.ok(r.status >= 400);
    assert.match(r.json.error.message, /IRIS_TEST_UNSET_KEY/);
  });
  test('missing max_tokens on /v1/messages is a 400 in the Anthropic shape', async () => {
    const r = await postJson(`${iris.url}/v1/messages`, { model: 'chat', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(r.status, 400);
    assert.equal(r.json.type, 'error');
    assert.match(r.json.error.message, /max_tokens/);
  });
  test('an unknown path is a 404 in the caller dialect', async () => {
    const o = await postJson(`${iris.url}/v1/nope`, {});
    assert.equal(o.status, 404);
    assert.match(o.json.error.message, /no route for POST \/v1\/nope/);
    const a = await postJson(`${iris.url}/v1/nope`, {}, { 'anthropic-version': '2023-06-01' });
    assert.equal(a.status, 404);
    assert.equal(a.json.type, 'error');
  });
  test('health and readiness', async () => {
    assert.equal((await fetch(`${iris.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${iris.url}/readyz`)).status, 200);
  });
});
