// LangChain's OpenAI and Anthropic chat models pointed at iris by their base URL alone: chat,
// streaming, tools, the Responses API, embeddings, and Anthropic's extended thinking.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { ChatAnthropic } from '@langchain/anthropic';
import { startIris } from './harness.mjs';

let iris;
const lastBody = async (provider) => (await (await fetch(`${iris.fakes.base}/_last/${provider}`)).json()).body;
const weather = {
  name: 'get_weather', description: 'Weather for a city',
  schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

before(async () => { iris = await startIris(); });
after(async () => { await iris?.stop(); });

const openaiModel = (fields = {}) =>
  new ChatOpenAI({ model: 'chat', apiKey: 'unused', maxRetries: 0, configuration: { baseURL: `${iris.url}/v1` }, ...fields });
const anthropicModel = (fields = {}) =>
  new ChatAnthropic({ model: 'anthropic/claude-haiku-4-5', apiKey: 'unused', maxRetries: 0, anthropicApiUrl: iris.url, ...fields });

test('ChatOpenAI: invoke, stream and tools', async () => {
  const r = await openaiModel().invoke('hello there');
  assert.match(r.content, /^Hello from openai\. You said: hello there/);
  assert.ok(r.usage_metadata.input_tokens > 0);
  const pieces = [];
  for await (const chunk of await openaiModel().stream('stream please')) pieces.push(chunk.content);
  assert.match(pieces.join(''), /You said: stream please/);
  const t = await openaiModel({ model: 'gemini/gemini-2.5-flash' }).bindTools([weather]).invoke('weather in Paris?');
  assert.deepEqual(t.tool_calls.map((c) => [c.name, c.args]), [['get_weather', { city: 'Paris' }]]);
});

test('ChatOpenAI with the Responses API', async () => {
  const r = await openaiModel({ model: 'anthropic/claude-haiku-4-5', useResponsesApi: true }).invoke('hello');
  const text = typeof r.content === 'string' ? r.content : r.content.map((p) => p.text ?? '').join('');
  assert.match(text, /^Hello from anthropic/);
});

test('OpenAIEmbeddings', async () => {
  const e = new OpenAIEmbeddings({ model: 'openai/text-embedding-3-small', apiKey: 'unused', configuration: { baseURL: `${iris.url}/v1` } });
  const [a, b] = await e.embedDocuments(['alpha', 'beta']);
  assert.equal(a.length, 8);
  assert.notDeepEqual(a, b);
  assert.equal((await e.embedQuery('alpha')).length, 8);
});

test('ChatAnthropic: invoke, stream, tools, and thinking reaching Anthropic', async () => {
  const r = await anthropicModel().invoke('hello there');
  assert.match(r.content, /^Hello from anthropic\. You said: hello there/);
  const pieces = [];
  for await (const chunk of await anthropicModel({ model: 'openai/gpt-4o-mini' }).stream('stream please')) pieces.push(chunk.content);
  assert.match(pieces.join(''), /^Hello from openai/);
  const t = await anthropicModel().bindTools([weather]).invoke('weather in Paris?');
  assert.deepEqual(t.tool_calls.map((c) => [c.name, c.args]), [['get_weather', { city: 'Paris' }]]);
  const thinking = await anthropicModel({ maxTokens: 4096, thinking: { type: 'enabled', budget_tokens: 1024 } }).invoke('think');
  assert.deepEqual((await lastBody('anthropic')).thinking, { type: 'enabled', budget_tokens: 1024 });
  assert.equal(thinking.content[0].type, 'thinking');
  assert.match(thinking.content[0].signature, /^sig_/);
});
