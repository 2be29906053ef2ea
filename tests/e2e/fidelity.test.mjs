// Nothing silently dropped: a caller whose SDK speaks its provider's own wire format (Anthropic
// SDK -> Anthropic, OpenAI SDK -> OpenAI) reaches the provider with every field it sent
// (cache_control, thinking, service_tier, fields iris does not know), and gets back what the
// provider answered (thinking blocks with their signatures, cache token counts, priced as
// such); across wire formats, what cannot be taken is named in x-iris-dropped-fields and the
// iris report; OpenAI's reasoning models get their parameter rules.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { createAnthropic } from '@ai-sdk/anthropic';
import { generateText, streamText, tool, jsonSchema } from 'ai';
import { startIris } from './harness.mjs';

let iris;
let anthropic;
let openai;
const lastBody = async (provider) => (await (await fetch(`${iris.fakes.base}/_last/${provider}`)).json()).body;
const weatherTool = {
  name: 'get_weather', description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  cache_control: { type: 'ephemeral' },
};

before(async () => {
  iris = await startIris();
  anthropic = new Anthropic({ baseURL: iris.url, apiKey: 'unused', maxRetries: 0 });
  openai = new OpenAI({ baseURL: `${iris.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
after(async () => { await iris?.stop(); });

test('Anthropic SDK to Anthropic: every field reaches the provider as sent', async () => {
  const request = {
    model: 'anthropic/claude-haiku-4-5',
    max_tokens: 4096,
    system: [{ type: 'text', text: 'You are a weather assistant.', cache_control: { type: 'ephemeral', ttl: '1h' } }],
    thinking: { type: 'enabled', budget_tokens: 2048 },
    service_tier: 'auto',
    context_management: { edits: [{ type: 'clear_tool_uses_20250919' }] },
    metadata: { user_id: 'user-42' },
    tools: [weatherTool],
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello', cache_control: { type: 'ephemeral' } }] }],
  };
  const { data: r, response } = await anthropic.messages.create(request).withResponse();
  assert.deepEqual(await lastBody('anthropic'), { ...request, model: 'claude-haiku-4-5' });
  assert.equal(response.headers.get('x-iris-dropped-fields'), null);
  // The answer keeps the thinking block with its signature, and the cache counts.
  assert.equal(r.content[0].type, 'thinking');
  assert.equal(r.content[0].thinking, 'Let me think about it.');
  assert.match(r.content[0].signature, /^sig_/);
  assert.equal(r.usage.cache_read_input_tokens, 100);
  assert.equal(r.usage.cache_creation_input_tokens, 50);
  // Priced as such: claude-haiku-4-5 is $1 in, $0.10 cache read, $1.25 cache write, $5 out.
  const want = (r.usage.input_tokens * 1 + 100 * 0.10 + 50 * 1.25 + r.usage.output_tokens * 5) / 1e6;
  assert.ok(Math.abs(r.iris.cost_usd - want) < 1e-12, `${r.iris.cost_usd} vs ${want}`);
});

test('a thinking tool conversation continues: the signed thinking block goes back as it came', async () => {
  const base = { model: 'anthropic/claude-haiku-4-5', max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 1024 }, tools: [weatherTool] };
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];
  const first = await anthropic.messages.create({ ...base, messages });
  assert.deepEqual(first.content.map((b) => b.type), ['thinking', 'tool_use']);
  messages.push({ role: 'assistant', content: first.content });
  messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: first.content[1].id, content: 'sunny' }] });
  // (The fake refuses, as Anthropic does, a tool turn that does not begin with its thinking.)
  const second = await anthropic.messages.create({ ...base, messages });
  assert.match(second.content.at(-1).text, /the tool said it is sunny/);
  assert.deepEqual((await lastBody('anthropic')).messages[1].content[0], first.content[0]);
});

test('streamed thinking arrives as thinking and signature deltas', async () => {
  const stream = anthropic.messages.stream({
    model: 'anthropic/claude-haiku-4-5', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: 'Think, then answer.' }],
  });
  const thinking = [];
  stream.on('thinking', (delta) => thinking.push(delta));
  const message = await stream.finalMessage();
  assert.deepEqual(thinking, ['Let me think ', 'about it.']);
  assert.equal(message.content[0].type, 'thinking');
  assert.match(message.content[0].signature, /^sig_/);
  assert.equal(message.content[1].type, 'text');
});

test('Anthropic SDK to Anthropic: a server tool goes as written, and its blocks and citations come back', async () => {
  const request = {
    model: 'anthropic/claude-haiku-4-5', max_tokens: 1024,
    tools: [{ type: 'web_search_20250305', name: 'web_search', max_uses: 2 }],
    messages: [{ role: 'user', content: 'Rain in Paris?' }],
  };
  const r = await anthropic.messages.create(request);
  assert.deepEqual((await lastBody('anthropic')).tools, request.tools);
  assert.deepEqual(r.content.map((b) => b.type), ['server_tool_use', 'web_search_tool_result', 'text', 'text']);
  assert.deepEqual(r.content[0].input, { query: 'Rain in Paris?' });
  assert.equal(r.content[1].tool_use_id, r.content[0].id);
  assert.equal(r.content[3].citations[0].url, 'https://weather.example/paris');
  assert.equal(r.usage.server_tool_use.web_search_requests, 1);
  assert.equal(r.iris.provider, 'anthropic');
  // Streamed: the SDK builds the same message from the events.
  const stream = anthropic.messages.stream({ ...request, messages: [{ role: 'user', content: 'Rain again?' }] });
  const citations = [];
  stream.on('citation', (c) => citations.push(c));
  const m = await stream.finalMessage();
  assert.deepEqual(m.content.map((b) => b.type), ['server_tool_use', 'web_search_tool_result', 'text', 'text']);
  assert.deepEqual(m.content[0].input, { query: 'Rain again?' });
  assert.equal(citations.length, 1);
  assert.deepEqual(m.content[3].citations, citations);
  assert.equal(m.usage.server_tool_use.web_search_requests, 1);
  // The next turn sends the search back as it came.
  await anthropic.messages.create({ ...request, messages: [...request.messages, { role: 'assistant', content: m.content }, { role: 'user', content: 'Thanks' }] });
  assert.deepEqual((await lastBody('anthropic')).messages[1].content.slice(0, 2), m.content.slice(0, 2).map((b) => JSON.parse(JSON.stringify(b))));
  // Another provider cannot run it: the caller is told which API can.
  await assert.rejects(
    anthropic.messages.create({ ...request, model: 'openai/gpt-4o-mini' }),
    (e) => e.status === 400 && /tools\[0\] \(web_search_20250305\)/.test(e.message) && /Anthropic's Messages API/.test(e.message),
  );
});

test('@ai-sdk/anthropic: caching and thinking reach the provider, reasoning and cache counts come back', async () => {
  const provider = createAnthropic({ baseURL: `${iris.url}/v1`, apiKey: 'unused' });
  const r = await generateText({
    model: provider('anthropic/claude-haiku-4-5'), maxRetries: 0, maxOutputTokens: 4096,
    messages: [
      { role: 'system', content: 'You are terse.', providerOptions: { anthropic: { cacheControl: { type: 'ephemeral' } } } },
      { role: 'user', content: 'Hello' },
    ],
    providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } },
  });
  const up = await lastBody('anthropic');
  assert.deepEqual(up.thinking, { type: 'enabled', budget_tokens: 1024 });
  assert.deepEqual(up.system[0].cache_control, { type: 'ephemeral' });
  assert.equal(r.reasoningText, 'Let me think about it.');
  assert.equal(r.usage.inputTokenDetails.cacheReadTokens, 100);
  assert.equal(r.usage.inputTokenDetails.cacheWriteTokens, 50);
  // Streaming too: the reasoning deltas come through.
  const s = streamText({
    model: provider('anthropic/claude-haiku-4-5'), maxRetries: 0, maxOutputTokens: 4096, prompt: 'Hello',
    providerOptions: { anthropic: { thinking: { type: 'enabled', budgetTokens: 1024 } } },
  });
  const reasoning = [];
  for await (const part of s.fullStream) if (part.type === 'reasoning-delta') reasoning.push(part.text);
  assert.equal(reasoning.join(''), 'Let me think about it.');
});

test('OpenAI SDK to OpenAI: fields iris does not interpret reach the provider', async () => {
  const request = {
    model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20,
    service_tier: 'flex', store: true, metadata: { team: 'ml' }, logprobs: true, top_logprobs: 2, verbosity: 'low',
  };
  const { response } = await openai.chat.completions.create(request).withResponse();
  const up = await lastBody('openai');
  for (const key of ['service_tier', 'store', 'metadata', 'logprobs', 'top_logprobs', 'verbosity']) {
    assert.deepEqual(up[key], request[key], key);
  }
  assert.equal(up.max_completion_tokens, 20);
  assert.equal(up.max_tokens, undefined);
  assert.equal(response.headers.get('x-iris-dropped-fields'), null);
});

test('OpenAI SDK to OpenAI: logprobs and system_fingerprint come back, in bodies and streams', async () => {
  const request = { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], logprobs: true };
  const answer = await openai.chat.completions.create(request);
  const text = answer.choices[0].message.content;
  const tokens = answer.choices[0].logprobs?.content?.map((e) => e.token);
  assert.ok(tokens?.length > 1, JSON.stringify(answer.choices[0]));
  assert.equal(tokens.join(''), text);
  assert.deepEqual(answer.choices[0].logprobs.content[0].bytes, [...Buffer.from(tokens[0])]);
  assert.equal(answer.system_fingerprint, 'fp_fake');
  assert.ok(answer.usage.cost > 0);

  const stream = await openai.chat.completions.create({ ...request, stream: true });
  let streamed = '';
  const streamedTokens = [];
  let chunks = 0;
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta?.content ?? '';
    for (const e of chunk.choices[0]?.logprobs?.content ?? []) streamedTokens.push(e.token);
    // (Every chunk of the fake's carries its fingerprint, and so every chunk iris makes of one.)
    if (chunk.choices[0]?.delta?.content) assert.equal(chunk.system_fingerprint, 'fp_fake');
    chunks += 1;
  }
  assert.ok(chunks > 2 && streamedTokens.length > 1);
  assert.equal(streamedTokens.join(''), streamed);
});

test('across wire formats, what the provider cannot take is named, never silently lost', async () => {
  const { data: r, response } = await openai.chat.completions.create({
    model: 'gemini/gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }], service_tier: 'flex', store: true,
  }).withResponse();
  assert.equal(response.headers.get('x-iris-dropped-fields'), 'service_tier, store');
  assert.match(r.iris.warnings.join('\n'), /service_tier was not passed to gemini\/gemini-2\.5-flash/);
  const g = await lastBody('gemini');
  assert.ok(!('service_tier' in g) && !('store' in g), JSON.stringify(g));
  // An Anthropic caller's thinking and cache_control to an OpenAI model.
  const { data: a, response: ar } = await anthropic.messages.create({
    model: 'openai/gpt-4o-mini', max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 },
    messages: [{ role: 'user', content: [{ type: 'text', text: 'hi', cache_control: { type: 'ephemeral' } }] }],
  }).withResponse();
  assert.equal(ar.headers.get('x-iris-dropped-fields'), 'cache_control, thinking');
  assert.equal(a.iris.warnings.length, 2);
  // To a reasoning model the thinking budget is an effort instead.
  const { response: gr } = await anthropic.messages.create({
    model: 'openai/gpt-5-mini', max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 8000 },
    messages: [{ role: 'user', content: 'hi' }],
  }).withResponse();
  assert.equal((await lastBody('openai')).reasoning_effort, 'medium');
  assert.equal(gr.headers.get('x-iris-dropped-fields'), null);
  // Streams report it in their headers as well.
  const s = await openai.chat.completions.create({ model: 'mistral/mistral-small-latest', messages: [{ role: 'user', content: 'hi' }], stream: true, prediction: { type: 'content', content: 'x' } }).withResponse();
  assert.equal(s.response.headers.get('x-iris-dropped-fields'), 'prediction');
  for await (const chunk of s.data) void chunk;
});

test('OpenAI reasoning models get their parameter rules: no temperature, max_completion_tokens', async () => {
  const { response } = await openai.chat.completions.create({
    model: 'openai/gpt-5-mini', messages: [{ role: 'user', content: 'hi' }], temperature: 0.2, max_tokens: 50,
  }).withResponse();
  const up = await lastBody('openai');
  assert.equal(up.temperature, undefined);
  assert.equal(up.max_completion_tokens, 50);
  assert.equal(response.headers.get('x-iris-dropped-fields'), 'temperature');
});

test('Gemini thought signatures survive a tool round trip through an OpenAI client', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  for (const stream of [false, true]) {
    const messages = [{ role: 'user', content: 'Weather in Paris?' }];
    let call;
    if (stream) {
      const chunks = await openai.chat.completions.create({ model: 'gemini/gemini-3-pro-preview', messages, tools, stream: true });
      for await (const c of chunks) call = call ?? c.choices[0]?.delta?.tool_calls?.[0];
    } else {
      call = (await openai.chat.completions.create({ model: 'gemini/gemini-3-pro-preview', messages, tools })).choices[0].message.tool_calls[0];
    }
    assert.ok(call?.id, 'a tool call came back');
    messages.push({ role: 'assistant', content: null, tool_calls: [{ id: call.id, type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] });
    messages.push({ role: 'tool', tool_call_id: call.id, content: 'sunny' });
    const r = await openai.chat.completions.create({ model: 'gemini/gemini-3-pro-preview', messages, tools });
    assert.match(r.choices[0].message.content, /the tool said it is sunny/);
    const sent = (await lastBody('gemini')).contents[1].parts[0];
    assert.match(sent.thoughtSignature, /^gsig_/, `stream=${stream}: the signature Gemini gave, not the stand-in`);
  }
  // A call iris never saw carries Gemini's documented stand-in.
  await openai.chat.completions.create({ model: 'gemini/gemini-3-pro-preview', tools, messages: [
    { role: 'user', content: 'hi' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_unknown', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] },
    { role: 'tool', tool_call_id: 'call_unknown', content: 'x' }] });
  assert.equal((await lastBody('gemini')).contents[1].parts[0].thoughtSignature, 'skip_thought_signature_validator');
});

test('a JSON schema reaches Anthropic without the limits it refuses, and the answer is checked against the caller\'s own', async () => {
  const schema = (max) => ({
    type: 'object', required: ['city', 'count'],
    properties: { city: { type: 'string', maxLength: 20 }, count: { type: 'integer', minimum: 1, maximum: max, description: 'how many' } },
  });
  const ask = (max) => openai.chat.completions.create({
    model: 'anthropic/claude-haiku-4-5', messages: [{ role: 'user', content: 'a city' }],
    response_format: { type: 'json_schema', json_schema: { name: 'city', schema: schema(max) } },
  });
  const ok = await ask(10);
  assert.deepEqual(JSON.parse(ok.choices[0].message.content), { city: 'Paris', count: 7 });
  const sent = (await lastBody('anthropic')).output_config.format.schema;
  assert.equal(sent.additionalProperties, false);
  assert.equal(sent.properties.count.minimum, undefined);
  assert.equal(sent.properties.count.description, 'how many (minimum: 1, maximum: 10)');
  assert.equal(sent.properties.city.description, '(maxLength: 20)');
  // An answer that breaks the caller's limit is retried, then a clear error naming the limit.
  await assert.rejects(ask(5), (e) => {
    assert.equal(e.status, 502);
    assert.match(e.message, /does not keep the response schema \(\$\.count: 7 is above the maximum 5\)/);
    assert.ok(e.error.iris_error_class === 'upstream');
    return true;
  });
  // Streamed, the answer's text is out before it can be checked: the stream ends with an error
  // event naming the limit instead of its normal end.
  const stream = await openai.chat.completions.create({
    model: 'anthropic/claude-haiku-4-5', messages: [{ role: 'user', content: 'a city' }], stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'city', schema: schema(5) } },
  });
  let text = '';
  await assert.rejects((async () => { for await (const c of stream) text += c.choices[0]?.delta?.content ?? ''; })(), (e) => {
    assert.match(e.message, /does not keep the response schema \(\$\.count: 7 is above the maximum 5\)/);
    return true;
  });
  assert.deepEqual(JSON.parse(text), { city: 'Paris', count: 7 });
  const kept = await openai.chat.completions.create({
    model: 'anthropic/claude-haiku-4-5', messages: [{ role: 'user', content: 'a city' }], stream: true,
    response_format: { type: 'json_schema', json_schema: { name: 'city', schema: schema(10) } },
  });
  let finish = null;
  for await (const c of kept) finish = c.choices[0]?.finish_reason ?? finish;
  assert.equal(finish, 'stop');
  // A model that declines gives no JSON, and that is its answer, not a broken schema.
  const refused = await openai.chat.completions.create({
    model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'refuse me' }],
    response_format: { type: 'json_schema', json_schema: { name: 'city', schema: schema(5) } },
  });
  assert.equal(refused.choices[0].message.refusal, 'I cannot help with that.');
  assert.equal(refused.choices[0].message.content, null);
  assert.equal(refused.iris.attempts.length, 1);
});
