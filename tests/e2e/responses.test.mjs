// The OpenAI Responses API (POST /v1/responses) end to end: the official `openai` SDK (create,
// the strict `responses.stream()` helper) and `@ai-sdk/openai`'s default model, which speaks
// this API, against iris routing to fake upstreams of every provider and the local model.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, tool, stepCountIs, jsonSchema } from 'ai';
import { startIris, postJson, readSse, repoRoot, yamlFor } from './harness.mjs';

let iris;
let openai;
let aisdk;
const pngBase64 = fs.readFileSync(path.join(repoRoot, 'tests/data/smolvlm2/images/small.png')).toString('base64');
const lastBody = async (provider) => (await (await fetch(`${iris.fakes.base}/_last/${provider}`)).json()).body;
const weatherTool = { type: 'function', name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };

before(async () => {
  iris = await startIris();
  openai = new OpenAI({ baseURL: `${iris.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  aisdk = createOpenAI({ baseURL: `${iris.url}/v1`, apiKey: 'unused' });
});
after(async () => { await iris?.stop(); });

describe('openai SDK: responses', () => {
  for (const model of ['chat', 'anthropic/claude-haiku-4-5', 'gemini/gemini-2.5-flash', 'mistral/mistral-small-latest']) {
    test(`create, not streaming, via ${model}`, async () => {
      const r = await openai.responses.create({ model, input: 'ping', instructions: 'be brief', max_output_tokens: 50, metadata: { team: 'ml' } });
      assert.equal(r.object, 'response');
      assert.match(r.id, /^resp_[0-9a-f]{32,}$/);  // (iris's own, or OpenAI's as it made it)
      assert.equal(r.status, 'completed');
      assert.match(r.output_text, /^Hello from \w+\. You said: ping$/);
      assert.equal(r.instructions, 'be brief');
      assert.deepEqual(r.metadata, { team: 'ml' });
      assert.equal(r.max_output_tokens, 50);
      assert.ok(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
      assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
      assert.ok(r.iris.attempts.length === 1 && r.iris.provider.length > 0);
      assert.ok(typeof r.usage.cost === 'number' && r.usage.cost > 0, 'every target here has a list price');
    });
  }

  test('instructions reach the upstream as its system prompt, the input as the user turn', async () => {
    await openai.responses.create({ model: 'anthropic/claude-haiku-4-5', instructions: 'answer in French', input: [{ role: 'user', content: [{ type: 'input_text', text: 'hi' }] }] });
    const body = await lastBody('anthropic');
    assert.equal(JSON.stringify(body.system).includes('answer in French'), true);
    assert.deepEqual(body.messages.map((m) => m.role), ['user']);
  });

  test('the strict stream helper accepts every event, and the final response is whole', async () => {
    const stream = openai.responses.stream({ model: 'chat', input: 'stream me' });
    let deltas = '';
    stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
    const final = await stream.finalResponse();
    assert.equal(deltas, 'Hello from openai. You said: stream me');
    assert.equal(final.output_text, deltas);
    assert.equal(final.status, 'completed');
    assert.ok(final.usage.output_tokens > 0);
    assert.equal(final.iris.provider, 'openai');
  });

  test('raw stream: the typed events in order, numbered, with no [DONE]', async () => {
    const res = await fetch(`${iris.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gemini/gemini-2.5-flash', input: 'one two', stream: true }) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const events = await readSse(res);
    const types = events.map((e) => e.event);
    assert.deepEqual(types.slice(0, 5), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added', 'response.output_text.delta']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    events.forEach((e, i) => { assert.equal(e.data.type, e.event); assert.equal(e.data.sequence_number, i); });
    const completed = events.at(-1).data.response;
    assert.equal(completed.output[0].content[0].text, 'Hello from gemini. You said: one two');
    assert.equal(completed.id, events[0].data.response.id);
  });

  test('function tools round trip, streamed, with function_call and function_call_output items', async () => {
    for (const model of ['openai/gpt-4o-mini', 'anthropic/claude-haiku-4-5', 'gemini/gemini-2.5-flash']) {
      const stream = openai.responses.stream({ model, input: 'weather in Paris?', tools: [weatherTool] });
      const first = await stream.finalResponse();
      const call = first.output.find((o) => o.type === 'function_call');
      assert.ok(call, `${model}: ${JSON.stringify(first.output)}`);
      assert.equal(call.name, 'get_weather');
      assert.deepEqual(JSON.parse(call.arguments), { city: 'Paris' });
      assert.equal(call.status, 'completed');
      const second = await openai.responses.create({
        model, tools: [weatherTool],
        input: [{ role: 'user', content: 'weather in Paris?' }, { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments }, { type: 'function_call_output', call_id: call.call_id, output: '{"sky":"sunny"}' }],
      });
      assert.match(second.output_text, /the tool said it is sunny/, model);
    }
  });

  test('previous_response_id continues the thread on another provider', async () => {
    const first = await openai.responses.create({ model: 'chat', input: 'my name is Ada', instructions: 'not carried over' });
    const second = await openai.responses.create({ model: 'anthropic/claude-haiku-4-5', previous_response_id: first.id, input: 'what is my name?' });
    assert.equal(second.previous_response_id, first.id);
    assert.match(second.output_text, /You said: what is my name\?/);
    const body = await lastBody('anthropic');
    assert.equal(body.system, undefined, 'instructions are not carried over');
    assert.deepEqual(body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.match(JSON.stringify(body.messages[0]), /my name is Ada/);
    assert.match(JSON.stringify(body.messages[1]), /Hello from openai\. You said: my name is Ada/);
    // A third turn carries both earlier ones.
    const third = await openai.responses.create({ model: 'gemini/gemini-2.5-flash', previous_response_id: second.id, input: 'and again?' });
    assert.match(third.output_text, /You said: and again\?/);
    assert.equal((await lastBody('gemini')).contents.length, 5);
  });

  test('a thread kept with store:false is not kept; an unknown one is a 404 naming the field', async () => {
    const r = await openai.responses.create({ model: 'chat', input: 'forget me', store: false });
    assert.equal(r.store, false);
    for (const id of [r.id, 'resp_0123456789abcdef0123456789abcdef']) {
      await assert.rejects(openai.responses.create({ model: 'chat', previous_response_id: id, input: 'hello?' }), (e) => {
        assert.equal(e.status, 404);
        assert.match(e.message, /previous_response_id: response resp_\w+ was not found/);
        return true;
      });
    }
  });

  test('json_schema text.format reaches the upstream as its structured-output setting', async () => {
    const schema = { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false };
    const format = { type: 'json_schema', name: 'place', schema, strict: true };
    const r = await openai.responses.create({ model: 'chat', input: 'json please', text: { format } });
    assert.deepEqual((await lastBody('openai')).text, { format }, 'OpenAI gets it as written');
    assert.deepEqual(JSON.parse(r.output_text), { city: 'Paris' });
    await openai.responses.create({ model: 'groq/llama-3.3-70b', input: 'json please', text: { format } });
    assert.deepEqual((await lastBody('compat')).response_format, { type: 'json_schema', json_schema: { name: 'place', schema, strict: true } });
  });

  test('reasoning.effort reaches OpenAI as is, Anthropic and Gemini as a thinking budget, and is refused by the local model', async () => {
    await openai.responses.create({ model: 'chat', input: 'think', reasoning: { effort: 'low' } });
    assert.deepEqual((await lastBody('openai')).reasoning, { effort: 'low' });
    await openai.responses.create({ model: 'anthropic/claude-haiku-4-5', input: 'think', reasoning: { effort: 'low' }, max_output_tokens: 100 });
    const a = await lastBody('anthropic');
    assert.deepEqual(a.thinking, { type: 'enabled', budget_tokens: 2048 });
    assert.equal(a.max_tokens, 2148, 'the budget comes on top of the answer\'s tokens');
    await openai.responses.create({ model: 'gemini/gemini-2.5-flash', input: 'think', reasoning: { effort: 'high' } });
    assert.deepEqual((await lastBody('gemini')).generationConfig.thinkingConfig, { thinkingBudget: 16384 });
    await assert.rejects(openai.responses.create({ model: 'local/smolvlm2', input: 'think', reasoning: { effort: 'low' } }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /does not reason/);
      return true;
    });
  });

  test('an image as input_image reaches the upstream', async () => {
    const r = await openai.responses.create({ model: 'anthropic/claude-haiku-4-5', input: [{ role: 'user', content: [{ type: 'input_text', text: 'what is this?' }, { type: 'input_image', image_url: `data:image/png;base64,${pngBase64}` }] }] });
    assert.match(r.output_text, /I see 1 image/);
  });

  test('the local model answers the Responses API too', async () => {
    const r = await openai.responses.create({ model: 'local/smolvlm2', input: 'Hi', max_output_tokens: 4 });
    assert.equal(r.iris.provider, 'local');
    assert.ok(r.usage.output_tokens > 0 && r.usage.output_tokens <= 4);
    assert.ok(['completed', 'incomplete'].includes(r.status));
    if (r.status === 'incomplete') assert.equal(r.incomplete_details.reason, 'max_output_tokens');
  });

  test('what iris cannot do is a 400 that names the field', async () => {
    const claude = 'anthropic/claude-haiku-4-5';
    const cases = [
      [{ model: claude, input: 'x', tools: [{ type: 'web_search' }] }, /anthropic\/claude-haiku-4-5 cannot take tools\[0\] \(web_search\): only OpenAI's Responses API can/],
      [{ model: 'chat', input: 'x', background: true }, /background/],
      [{ model: claude, input: [{ role: 'user', content: [{ type: 'text', text: 'read' }, { type: 'input_file', file_id: 'file-1' }] }] }, /cannot take input\[0\]\.content\[1\] \(input_file\)/],
      [{ model: 'local/smolvlm2', input: [{ role: 'user', content: 'x' }, { type: 'computer_call' }] }, /cannot take input\[1\] \(computer_call\)/],
      [{ model: 'chat' }, /input: required/],
      [{ model: 'chat', input: 'x', previous_response_id: 'chatcmpl-1' }, /previous_response_id: expected the id of an earlier response/],
      // (An item this key was not given is named by no provider, OpenAI included.)
      [{ model: claude, input: [{ type: 'item_reference', id: 'msg_elsewhere' }] }, /item msg_elsewhere is not an output item this gateway returned/],
      [{ model: 'chat', input: [{ type: 'item_reference', id: 'msg_elsewhere' }] }, /item msg_elsewhere is not an output item this gateway returned/],
    ];
    for (const [body, pattern] of cases) {
      const r = await postJson(`${iris.url}/v1/responses`, body);
      assert.ok(r.status === 400 || r.status === 404, `${JSON.stringify(body)}: ${r.status} ${r.text}`);
      assert.match(r.json.error.message, pattern);
    }
  });
});

describe('to OpenAI the Responses API goes as is', () => {
  const lastUrl = async () => (await (await fetch(`${iris.fakes.base}/_last/openai`)).json()).url;

  test('hosted tools, include, service_tier and unknown fields reach OpenAI as written; its answer comes back whole', async () => {
    const request = {
      model: 'chat', input: 'news today', tools: [{ type: 'web_search' }, weatherTool], tool_choice: 'auto',
      include: ['web_search_call.action.sources'], service_tier: 'flex', truncation: 'auto', prompt_cache_key: 'k1',
      max_tool_calls: 3, store: true, metadata: { team: 'ml' },
    };
    const res = await postJson(`${iris.url}/v1/responses`, request);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-iris-dropped-fields'), null);
    assert.equal(await lastUrl(), '/openai/v1/responses');
    assert.deepEqual(await lastBody('openai'), { ...request, model: 'gpt-4o-mini' });
    const r = res.json;
    assert.deepEqual(r.output.map((o) => o.type), ['web_search_call', 'function_call']);
    assert.equal(r.output[0].action.query, 'news today');
    assert.equal(r.service_tier, 'flex');
    assert.equal(r.iris.provider, 'openai');
    assert.ok(r.usage.cost > 0);
  });

  test('a stream is OpenAI\'s own, event by event, with iris\'s report on its last event', async () => {
    const res = await fetch(`${iris.url}/v1/responses`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'chat', input: 'search this', tools: [{ type: 'web_search_preview' }], stream: true }) });
    assert.equal(res.status, 200);
    const events = await readSse(res);
    const types = events.map((e) => e.event);
    assert.ok(types.includes('response.web_search_call.searching'), types.join(' '));
    events.forEach((e, i) => { assert.equal(e.data.type, e.event); assert.equal(e.data.sequence_number, i); });
    const done = events.at(-1).data.response;
    assert.equal(events.at(-1).event, 'response.completed');
    assert.equal(done.id, events[0].data.response.id);
    assert.equal(done.output[1].content[0].text, 'Hello from openai. You said: search this');
    assert.equal(done.iris.provider, 'openai');
    assert.ok(done.usage.cost > 0);
    // The strict SDK helper takes the same stream.
    const stream = openai.responses.stream({ model: 'chat', input: 'again', tools: [{ type: 'web_search' }] });
    const final = await stream.finalResponse();
    assert.equal(final.output_text, 'Hello from openai. You said: again');
    assert.equal(final.iris.provider, 'openai');
  });

  test('a target that would translate refuses what only OpenAI takes, and the next target answers', async () => {
    const r = await openai.responses.create({ model: 'anthropic/claude-haiku-4-5', models: ['openai/gpt-4o-mini'], input: 'x', tools: [{ type: 'code_interpreter', container: { type: 'auto' } }] });
    assert.equal(r.iris.provider, 'openai');
    assert.equal(r.iris.attempts[0].provider, 'anthropic');
    assert.equal((await lastBody('openai')).tools[0].type, 'code_interpreter');
  });

  test('what lives in the provider\'s account (files, vector stores, prompts) is named only where iris.yaml allows it', async () => {
    const bodies = [
      { model: 'chat', input: 'x', tools: [{ type: 'file_search', vector_store_ids: ['vs_1'] }] },
      { model: 'chat', input: [{ role: 'user', content: [{ type: 'input_text', text: 'read' }, { type: 'input_file', file_id: 'file-1' }] }] },
      { model: 'chat', prompt: { id: 'pmpt_1' } },
    ];
    for (const body of bodies) {
      const r = await postJson(`${iris.url}/v1/responses`, body);
      assert.equal(r.status, 403, r.text);
      assert.match(r.json.error.message, /openai does not let callers name what is in its account \((tools\[0\]\.vector_store_ids|input\[0\]\.content\[1\]\.file_id) \(in the provider account\)|prompt \(a stored prompt template\)\): set account_resources: true on provider openai/);
    }
    const shared = await startIris({ yaml: (f) => yamlFor(f).replace('providers:\n', `providers:\n  shared: { kind: openai, base_url: ${f.urls.openai}, api_key_env: FAKE_OPENAI_KEY, account_resources: true }\n`) });
    try {
      const r = await postJson(`${shared.url}/v1/responses`, { ...bodies[0], model: 'shared/gpt-4o-mini' });
      assert.equal(r.status, 200, r.text);
      assert.deepEqual((await (await fetch(`${shared.fakes.base}/_last/openai`)).json()).body.tools[0].vector_store_ids, ['vs_1']);
    } finally {
      await shared.stop();
    }
  });

  test('threads: OpenAI continues its own by id; between OpenAI and others the kept conversation goes along', async () => {
    const first = await openai.responses.create({ model: 'chat', input: 'my name is Ada' });
    const second = await openai.responses.create({ model: 'chat', previous_response_id: first.id, input: 'what is my name?' });
    let body = await lastBody('openai');
    assert.equal(body.previous_response_id, first.id, 'OpenAI keeps its own responses: the id goes on');
    assert.equal(body.input, 'what is my name?');
    assert.equal(second.previous_response_id, first.id);
    // On to Anthropic: iris's kept copy of OpenAI's thread.
    await openai.responses.create({ model: 'anthropic/claude-haiku-4-5', previous_response_id: second.id, input: 'and now?' });
    const a = await lastBody('anthropic');
    assert.deepEqual(a.messages.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
    assert.match(JSON.stringify(a.messages[0]), /my name is Ada/);
    // A thread iris made goes to OpenAI as items, for OpenAI does not know its id.
    const fromClaude = await openai.responses.create({ model: 'anthropic/claude-haiku-4-5', input: 'I like tea' });
    const back = await openai.responses.create({ model: 'chat', previous_response_id: fromClaude.id, input: 'what do I like?' });
    body = await lastBody('openai');
    assert.equal(body.previous_response_id, undefined);
    assert.deepEqual(body.input.map((i) => i.role), ['user', 'assistant', 'user']);
    assert.match(JSON.stringify(body.input[1]), /Hello from anthropic\. You said: I like tea/);
    assert.match(back.output_text, /You said: what do I like\?/);
  });

  test('a reasoning model: its reasoning item comes back, sampling settings are dropped by name', async () => {
    const res = await postJson(`${iris.url}/v1/responses`, { model: 'openai/o4-mini', input: 'think', temperature: 0.3, include: ['reasoning.encrypted_content'], store: false });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('x-iris-dropped-fields'), 'temperature');
    assert.equal(res.json.output[0].type, 'reasoning');
    assert.match(res.json.output[0].encrypted_content, /^enc_/);
    assert.equal((await lastBody('openai')).temperature, undefined);
    // Replayed without its id (store:false kept nothing), the reasoning item goes back as is;
    // to another provider it is dropped by name.
    const { id, ...reasoning } = res.json.output[0];
    const next = await postJson(`${iris.url}/v1/responses`, { model: 'anthropic/claude-haiku-4-5', input: [{ role: 'user', content: 'think' }, reasoning, ...res.json.output.slice(1).map(({ id: _, ...item }) => item), { role: 'user', content: 'more' }] });
    assert.equal(next.status, 200, next.text);
    assert.equal(next.headers.get('x-iris-dropped-fields'), 'input.reasoning');
    // With an id this key was never given, it is refused before any provider sees it.
    const named = await postJson(`${iris.url}/v1/responses`, { model: 'chat', input: [{ role: 'user', content: 'think' }, res.json.output[0]] });
    assert.equal(named.status, 404, named.text);
    assert.match(named.json.error.message, new RegExp(`input: item ${id} is not an output item this gateway returned`));
  });
});

describe('@ai-sdk/openai default model (the Responses API)', () => {
  test('generateText and streamText', async () => {
    const g = await generateText({ model: aisdk('chat'), prompt: 'ping' });
    assert.equal(g.text, 'Hello from openai. You said: ping');
    assert.equal(g.finishReason, 'stop');
    assert.ok(g.usage.outputTokens > 0);
    const s = streamText({ model: aisdk('gemini/gemini-2.5-flash'), system: 'be brief', prompt: 'stream me' });
    let text = '';
    for await (const t of s.textStream) text += t;
    assert.equal(text, 'Hello from gemini. You said: stream me');
    assert.equal(await s.finishReason, 'stop');
  });

  test('a multi-step tool loop: the second step names the first answer by item_reference', async () => {
    const r = await generateText({
      model: aisdk('anthropic/claude-haiku-4-5'),
      prompt: 'weather in Paris?',
      tools: { get_weather: tool({ description: 'Weather in a city', inputSchema: jsonSchema({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }), execute: async ({ city }) => ({ city, sky: 'sunny' }) }) },
      stopWhen: stepCountIs(3),
    });
    assert.equal(r.steps.length, 2);
    assert.equal(r.steps[0].toolCalls[0].toolName, 'get_weather');
    assert.match(r.text, /the tool said it is sunny/);
    // Replaying the conversation with an assistant text makes the client send item_reference.
    // To another provider iris resolves the reference to its own item...
    const fromClaude = (await generateText({ model: aisdk('anthropic/claude-haiku-4-5'), prompt: 'hi' })).response.messages;
    const viaGemini = await generateText({ model: aisdk('gemini/gemini-2.5-flash'), messages: [{ role: 'user', content: 'hi' }, ...fromClaude, { role: 'user', content: 'and now?' }] });
    assert.match(viaGemini.text, /You said: and now\?/);
    const g = await lastBody('gemini');
    assert.deepEqual(g.contents.map((c) => c.role), ['user', 'model', 'user']);
    assert.match(g.contents[1].parts[0].text, /Hello from anthropic\. You said: hi/);
    // ...and OpenAI's own items go back to OpenAI as is, for it to resolve.
    const fromOpenAI = (await generateText({ model: aisdk('chat'), prompt: 'hi' })).response.messages;
    const followUp = await generateText({ model: aisdk('chat'), messages: [{ role: 'user', content: 'hi' }, ...fromOpenAI, { role: 'user', content: 'and now?' }] });
    assert.match(followUp.text, /You said: and now\?/);
    const body = await lastBody('openai');
    assert.equal(body.input[1].type, 'item_reference');
    assert.match(body.input[1].id, /^msg_[0-9a-f]{48}$/);
    // ...and to another provider iris puts in the item it kept of OpenAI's.
    const viaClaude = await generateText({ model: aisdk('anthropic/claude-haiku-4-5'), messages: [{ role: 'user', content: 'hi' }, ...fromOpenAI, { role: 'user', content: 'and now?' }] });
    assert.match(viaClaude.text, /You said: and now\?/);
    const a = await lastBody('anthropic');
    assert.deepEqual(a.messages.map((m) => m.role), ['user', 'assistant', 'user']);
    assert.match(JSON.stringify(a.messages[1]), /Hello from openai\. You said: hi/);
  });

  test('an error before any output raises the client\'s error with the status', async () => {
    await assert.rejects(generateText({ model: aisdk('bad-request'), prompt: 'x', maxRetries: 0 }), (e) => {
      assert.equal(e.statusCode, 400);
      return true;
    });
  });
});
