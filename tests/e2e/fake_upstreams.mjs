// Fake provider upstreams for iris's integration and e2e tests: one real HTTP server on
// loopback that speaks OpenAI, Anthropic, Gemini and Mistral wire formats (SSE included),
// validates requests as strictly as the real APIs, and injects faults chosen by model name.
//
// Paths:   /openai/v1/chat/completions   /mistral/v1/chat/completions
//          /anthropic/v1/messages        /gemini/v1beta/models/{model}:generateContent
//          /compat/v1/chat/completions   /gemini/v1beta/models/{model}:streamGenerateContent?alt=sse
//          /{openai,mistral,compat}/v1/embeddings   /gemini/v1beta/models/{model}:batchEmbedContents
//          /openai/v1/responses (OpenAI's Responses API: hosted tools answer with their own output
//          items, reasoning models with a reasoning item, previous_response_id continues a
//          response this fake made with store unset or true)
//          (embeddings: a deterministic vector per text, 8 values or `dimensions`; compat answers
//          its items in reverse order, by index, as some servers do)
// Faults (the upstream model id):
//   fail-<status>[-<tag>]     always answer that status with the provider's error body
//   flaky-<n>-<tag>           answer 503 to the first n requests for this model, then succeed
//   ratelimit-<n>-<tag>       429 with retry-after: 0 to the first n, then succeed
//   stall-headers[-<tag>]     accept, never answer
//   stall-first-token[-<tag>] send the headers and a first frame without content, then stall
//   stall-mid[-<tag>]         stream one delta, then stall
//   cut-mid[-<tag>]           stream one delta, then reset the connection
//   no-terminator[-<tag>]     stream a full answer but omit [DONE] / message_stop / finishReason
//   malformed[-<tag>]         stream one delta, then a data line that is not JSON
//   trickle-<ms>[-<tag>]      stream each word <ms> apart
//   sse-flood[-<tag>]         send the stream's headers, then one endless data line
//   leak-key[-<tag>]          answer 401 with an error text that quotes a key and a token
//   latin1-error[-<tag>]      answer 503 with an HTML error page in ISO-8859-1 (as some proxies do)
// Anything else answers "Hello from <provider>" plus an echo of the last user text.
// GET /_stats gives request counts per provider/model; GET /_last/<provider> the last body;
// GET /_seen every request line received, in order (smuggled requests show up here).
// Images by URL: /_image.png, /_slow_image.png (never answers), /_not_image.png (HTML sent
// as image/png), /_page.html (text/html).
import http from 'node:http';

const KEY = process.env.FAKE_UPSTREAM_KEY || 'test-key';

function sendJson(res, status, obj, headers = {}) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

const errorShapes = {
  openai: (status, message, type = 'invalid_request_error', code = null, param = null) => ({ error: { message, type, param, code } }),
  mistral: (status, message, type = 'invalid_request_error') => ({ object: 'error', message, type, param: null, code: String(status) }),
  compat: (status, message, type = 'invalid_request_error', code = null) => ({ error: { message, type, param: null, code } }),
  anthropic: (status, message, type = 'invalid_request_error') => ({ type: 'error', error: { type, message }, request_id: 'req_fake' }),
  gemini: (status, message, statusName = 'INVALID_ARGUMENT') => ({ error: { code: status, message, status: statusName } }),
};

function providerError(provider, status, message) {
  const anthropicTypes = { 400: 'invalid_request_error', 401: 'authentication_error', 403: 'permission_error', 404: 'not_found_error', 413: 'request_too_large', 429: 'rate_limit_error', 500: 'api_error', 529: 'overloaded_error' };
  const geminiStatus = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE', 504: 'DEADLINE_EXCEEDED' };
  const openaiTypes = { 401: 'invalid_request_error', 429: 'rate_limit_exceeded', 500: 'server_error', 503: 'server_error' };
  if (provider === 'anthropic') return errorShapes.anthropic(status, message, anthropicTypes[status] || 'api_error');
  if (provider === 'gemini') return errorShapes.gemini(status, message, geminiStatus[status] || 'UNKNOWN');
  if (provider === 'mistral') return errorShapes.mistral(status, message);
  return errorShapes.openai(status, message, openaiTypes[status] || 'invalid_request_error');
}

function lastUserText(provider, body) {
  const text = (content) => {
    if (typeof content === 'string') return content;
    if (!Array.isArray(content)) return '';
    return content.filter((p) => p.type === 'text' || typeof p.text === 'string').map((p) => p.text).join(' ');
  };
  if (provider === 'gemini') {
    const turns = (body.contents || []).filter((c) => c.role === 'user');
    const last = turns[turns.length - 1];
    return last ? last.parts.filter((p) => typeof p.text === 'string').map((p) => p.text).join(' ') : '';
  }
  const msgs = (body.messages || []).filter((m) => m.role === 'user');
  return msgs.length ? text(msgs[msgs.length - 1].content) : '';
}

function countImages(provider, body) {
  let n = 0;
  if (provider === 'gemini') {
    for (const c of body.contents || []) for (const p of c.parts || []) if (p.inlineData || p.fileData) n++;
    return n;
  }
  for (const m of body.messages || []) {
    if (!Array.isArray(m.content)) continue;
    for (const p of m.content) if (p.type === 'image_url' || p.type === 'image') n++;
  }
  return n;
}

// ---- request validation, as strict as the real services (protocols.md §8.1) ----
function validate(provider, req, body) {
  const bad = (status, message) => ({ status, message });
  if (provider === 'anthropic') {
    if (req.headers['x-api-key'] !== KEY) return bad(401, 'invalid x-api-key');
    if (!req.headers['anthropic-version']) return bad(400, 'anthropic-version: header is required');
    if (typeof body.model !== 'string') return bad(400, 'model: Field required');
    if (typeof body.max_tokens !== 'number') return bad(400, 'max_tokens: Field required');
    if (!Array.isArray(body.messages) || body.messages.length === 0) return bad(400, 'messages: Field required');
    let expect = 'user';
    let pendingToolUse = new Set();
    for (const [i, m] of body.messages.entries()) {
      if (m.role === 'system') return bad(400, `messages.${i}.role: Input should be 'user' or 'assistant'`);
      if (m.role !== expect) return bad(400, `messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`);
      expect = m.role === 'user' ? 'assistant' : 'user';
      const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
      if (!Array.isArray(blocks) || blocks.length === 0) return bad(400, `messages.${i}: all messages must have non-empty content except for the optional final assistant message`);
      const results = new Set();
      for (const b of blocks) {
        if (b.type === 'tool_use') {
          if (!Array.isArray(body.tools)) return bad(400, 'Requests which include `tool_use` or `tool_result` blocks must define tools.');
          if (typeof b.input !== 'object' || Array.isArray(b.input)) return bad(400, `messages.${i}.content: tool_use.input: Input should be a valid dictionary`);
          pendingToolUse.add(b.id);
        } else if (b.type === 'tool_result') {
          if (!pendingToolUse.has(b.tool_use_id)) return bad(400, `messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
          results.add(b.tool_use_id);
        } else if (b.type === 'image') {
          const s = b.source || {};
          if (s.type === 'base64' && !['image/jpeg', 'image/png', 'image/gif', 'image/webp'].includes(s.media_type)) return bad(400, `messages.${i}.content: image.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
        } else if (b.type === 'text') {
          if (typeof b.text !== 'string') return bad(400, `messages.${i}.content: text.text: Field required`);
        } else if (b.type === 'thinking' && m.role === 'assistant') {
          if (typeof b.signature !== 'string' || !b.signature) return bad(400, `messages.${i}.content: thinking.signature: Field required`);
        } else if (b.type === 'redacted_thinking' && m.role === 'assistant') {
          if (typeof b.data !== 'string') return bad(400, `messages.${i}.content: redacted_thinking.data: Field required`);
        } else if ((b.type === 'server_tool_use' || b.type === 'web_search_tool_result') && m.role === 'assistant') {
          // (a web search of an earlier turn, sent back as it came)
        } else if (b.type === 'document' && m.role === 'user') {
          if (!b.source || typeof b.source !== 'object') return bad(400, `messages.${i}.content: document.source: Field required`);
        } else {
          return bad(400, `messages.${i}.content: unknown block type ${b.type}`);
        }
      }
      if (m.role === 'user') pendingToolUse = new Set([...pendingToolUse].filter((id) => !results.has(id)));
    }
    if (body.temperature !== undefined && (body.temperature < 0 || body.temperature > 1)) return bad(400, 'temperature: Input should be less than or equal to 1');
    for (const c of anthropicCacheControls(body)) {
      if (c.type !== 'ephemeral' || (c.ttl !== undefined && !['5m', '1h'].includes(c.ttl))) return bad(400, 'cache_control: Input should be {"type":"ephemeral","ttl":"5m"|"1h"}');
    }
    if (body.thinking?.type === 'enabled') {
      if (!(body.thinking.budget_tokens >= 1024) || body.thinking.budget_tokens >= body.max_tokens) return bad(400, 'thinking.enabled.budget_tokens: Input should be >= 1024 and less than max_tokens');
      // With thinking on, an assistant turn that used a tool must begin with its thinking block.
      const lastAssistant = body.messages.filter((m) => m.role === 'assistant').at(-1);
      const blocks = Array.isArray(lastAssistant?.content) ? lastAssistant.content : [];
      if (blocks.some((b) => b.type === 'tool_use') && !['thinking', 'redacted_thinking'].includes(blocks[0]?.type)) {
        return bad(400, 'messages: Expected `thinking` or `redacted_thinking`, but found `' + blocks[0]?.type + '`. When `thinking` is enabled, a final `assistant` message must start with a thinking block.');
      }
    }
    return null;
  }
  if (provider === 'gemini') {
    if (req.headers['x-goog-api-key'] !== KEY) return bad(400, 'API key not valid. Please pass a valid API key.');
    const allowed = new Set(['contents', 'systemInstruction', 'tools', 'toolConfig', 'generationConfig', 'safetySettings', 'cachedContent']);
    for (const k of Object.keys(body)) if (!allowed.has(k)) return bad(400, `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
    if (!Array.isArray(body.contents) || body.contents.length === 0) return bad(400, '* GenerateContentRequest.contents: contents is not specified');
    for (const [i, c] of body.contents.entries()) {
      if (c.role !== 'user' && c.role !== 'model') return bad(400, `Invalid value at 'contents[${i}].role'`);
      for (const p of c.parts || []) {
        if (p.functionResponse && !p.functionResponse.name) return bad(400, `* GenerateContentRequest.contents[${i}].parts.function_response.name: Name cannot be empty.`);
        if (p.functionCall && p.thoughtSignature && p.thoughtSignature !== 'skip_thought_signature_validator' && !geminiSignatures.has(p.thoughtSignature)) {
          return bad(400, `Corrupted thought signature at contents[${i}].`);
        }
      }
    }
    if (body.generationConfig) {
      const g = new Set(['temperature', 'topP', 'topK', 'maxOutputTokens', 'stopSequences', 'seed', 'responseMimeType', 'responseSchema', 'candidateCount', 'presencePenalty', 'frequencyPenalty', 'thinkingConfig']);
      for (const k of Object.keys(body.generationConfig)) if (!g.has(k)) return bad(400, `Invalid JSON payload received. Unknown name "${k}" at 'generation_config': Cannot find field.`);
    }
    return null;
  }
  // OpenAI, Mistral and OpenAI-compatible.
  if (req.headers.authorization !== `Bearer ${KEY}`) {
    return bad(401, 'Incorrect API key provided.');
  }
  if (typeof body.model !== 'string') return bad(400, "you must provide a model parameter");
  if (!Array.isArray(body.messages) || body.messages.length === 0) return bad(400, "'messages' is a required property");
  if (body.stream_options && !body.stream) return bad(400, 'The \'stream_options\' parameter is only allowed when \'stream\' is enabled.');
  if (provider === 'openai' && /^(o[134](-|$)|gpt-5(?!.*-chat))/.test(body.model)) {  // reasoning models
    if ('max_tokens' in body) return bad(400, "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.");
    if ('temperature' in body && body.temperature !== 1) return bad(400, `Unsupported value: 'temperature' does not support ${body.temperature} with this model. Only the default (1) value is supported.`);
  }
  const callIds = new Set();
  for (const [i, m] of body.messages.entries()) {
    if (!['system', 'developer', 'user', 'assistant', 'tool'].includes(m.role)) return bad(400, `Invalid value: '${m.role}'. Supported values are: 'system', 'assistant', 'user', 'tool', and 'developer'.`);
    for (const tc of m.tool_calls || []) {
      if (provider === 'mistral' && !/^[a-zA-Z0-9]{9}$/.test(tc.id)) return bad(400, `Tool call id was ${tc.id} but must be a-z, A-Z, 0-9, with a length of 9.`);
      callIds.add(tc.id);
    }
    if (m.role === 'tool') {
      if (!m.tool_call_id) return bad(400, `messages[${i}].tool_call_id: missing`);
      if (!callIds.has(m.tool_call_id)) return bad(400, `Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.`);
    }
  }
  if (provider === 'mistral') {
    if (body.stream_options !== undefined) return bad(422, 'stream_options: Extra inputs are not permitted');
    if (body.seed !== undefined) return bad(422, 'seed: Extra inputs are not permitted');
    if (body.max_completion_tokens !== undefined) return bad(422, 'max_completion_tokens: Extra inputs are not permitted');
  }
  return null;
}

// ---- answers ----
function fakeFromSchema(schema) {
  const type = Array.isArray(schema?.type) ? schema.type[0] : schema?.type;
  if (schema?.enum) return schema.enum[0];
  if (type === 'object' || schema?.properties) {
    const out = {};
    for (const [name, sub] of Object.entries(schema.properties || {})) out[name] = fakeFromSchema(sub);
    return out;
  }
  if (type === 'array') return [];
  if (type === 'integer' || type === 'number' || type === 'INTEGER' || type === 'NUMBER') return 7;
  if (type === 'boolean' || type === 'BOOLEAN') return true;
  return 'Paris';
}

function planAnswer(provider, body) {
  const lastIsTool = provider === 'gemini'
    ? (body.contents || []).at(-1)?.parts?.some((p) => p.functionResponse)
    : provider === 'anthropic'
      ? Array.isArray(body.messages?.at(-1)?.content) && body.messages.at(-1).content.some((b) => b.type === 'tool_result')
      : body.messages?.at(-1)?.role === 'tool';
  const toolsOff = provider === 'gemini' ? body.toolConfig?.functionCallingConfig?.mode === 'NONE'
    : provider === 'anthropic' ? body.tool_choice?.type === 'none' : body.tool_choice === 'none';
  // (Anthropic's server tools run at Anthropic: they are no call for the client to answer.)
  const clientTools = provider === 'anthropic' ? (body.tools || []).filter((t) => !t.type || t.type === 'custom') : body.tools;
  const hasTools = !toolsOff && Array.isArray(clientTools) && clientTools.length > 0;
  if (hasTools && !lastIsTool) {
    return { toolCall: { name: provider === 'gemini' ? body.tools[0].functionDeclarations[0].name : provider === 'anthropic' ? clientTools[0].name : body.tools[0].function.name, args: { city: 'Paris' } } };
  }
  // Structured outputs: JSON that has the schema's shape (strings "Paris", numbers 7), whatever
  // limits it sets, as a model that reads them loosely would answer.
  const schema = provider === 'anthropic' ? body.output_config?.format?.schema
    : provider === 'gemini' ? body.generationConfig?.responseSchema
      : body.response_format?.type === 'json_schema' ? body.response_format.json_schema?.schema : undefined;
  if (schema) return { text: JSON.stringify(fakeFromSchema(schema)) };
  const images = countImages(provider, body);
  let text = `Hello from ${provider}`;
  if (lastIsTool) text = `${text}: the tool said it is sunny`;
  else if (images) text = `${text}: I see ${images} image${images > 1 ? 's' : ''}`;
  const echo = lastUserText(provider, body);
  if (echo && !lastIsTool) text += `. You said: ${echo}`;
  return { text };
}

const words = (text) => text.split(/(?<= )/);
const usageFor = (body, text) => ({ input: 11 + JSON.stringify(body.messages || body.contents || []).length % 7, output: Math.max(1, words(text).length), cached: 0 });
let idCounter = 0;
const nextId = () => (++idCounter).toString(36).padStart(9, '0').slice(-9);

// Every cache_control of an Anthropic body (system blocks, tools, content blocks, tool_result
// content).
function anthropicCacheControls(body) {
  const out = [];
  const blocks = [...(Array.isArray(body.system) ? body.system : []), ...(body.tools || [])];
  for (const m of body.messages || []) {
    for (const b of Array.isArray(m.content) ? m.content : []) {
      blocks.push(b);
      if (Array.isArray(b.content)) blocks.push(...b.content);
    }
  }
  for (const b of blocks) if (b && b.cache_control) out.push(b.cache_control);
  return out;
}
// Anthropic's cache counts for a body: a request that marks cache breakpoints reads 100 tokens
// from the cache and writes 50 (fixed, so tests can price them).
const anthropicCache = (body) => (anthropicCacheControls(body).length > 0 ? { read: 100, write: 50 } : { read: 0, write: 0 });
const fakeSignature = (text) => `sig_${Buffer.from(text).toString('base64').slice(0, 16)}`;
// Anthropic's web search server tool, as it answers: its call, its results, and the answer's
// text in blocks, the cited one with its citation (one search, counted in usage).
const searchesTheWeb = (body) => (body.tools || []).some((t) => t.type === 'web_search_20250305');
function webSearchBlocks(query) {
  const id = `srvtoolu_${nextId()}`;
  const result = { type: 'web_search_result', title: 'Paris weather', url: 'https://weather.example/paris', encrypted_content: 'EqgfCioIARgB', page_age: 'December 7, 2026' };
  const citation = { type: 'web_search_result_location', cited_text: 'Light rain, 9 °C.', url: result.url, title: result.title, encrypted_index: 'Eo8BCioIAhgB' };
  return {
    call: { type: 'server_tool_use', id, name: 'web_search', input: { query } },
    results: { type: 'web_search_tool_result', tool_use_id: id, content: [result] },
    citation,
  };
}

// Gemini 3 signs each function call (thoughtSignature) and wants the signature back with it.
const geminiSignatures = new Set();
function geminiCallPart(model, call) {
  const part = { functionCall: { name: call.name, args: call.args } };
  if (model.startsWith('gemini-3')) {
    part.thoughtSignature = `gsig_${nextId()}`;
    geminiSignatures.add(part.thoughtSignature);
  }
  return part;
}

function jsonAnswer(provider, model, body, answer) {
  const u = usageFor(body, answer.text || '');
  if (provider === 'anthropic') {
    const content = answer.toolCall
      ? [{ type: 'tool_use', id: `toolu_${nextId()}`, name: answer.toolCall.name, input: answer.toolCall.args }]
      : [{ type: 'text', text: answer.text }];
    const search = !answer.toolCall && searchesTheWeb(body);
    if (search) {
      const web = webSearchBlocks(lastUserText(provider, body));
      content.splice(0, content.length, web.call, web.results, { type: 'text', text: 'Found it: ' }, { type: 'text', text: answer.text, citations: [web.citation] });
    }
    if (body.thinking?.type === 'enabled') content.unshift({ type: 'thinking', thinking: 'Let me think about it.', signature: fakeSignature('Let me think about it.') });
    const cache = anthropicCache(body);
    return { id: `msg_${nextId()}`, type: 'message', role: 'assistant', model, content, stop_reason: answer.toolCall ? 'tool_use' : 'end_turn', stop_sequence: null, usage: { input_tokens: u.input, output_tokens: u.output, cache_creation_input_tokens: cache.write, cache_read_input_tokens: cache.read, ...(search ? { server_tool_use: { web_search_requests: 1 } } : {}) } };
  }
  if (provider === 'gemini') {
    const parts = answer.toolCall ? [geminiCallPart(model, answer.toolCall)] : [{ text: answer.text }];
    return { candidates: [{ content: { parts, role: 'model' }, finishReason: 'STOP', index: 0 }], usageMetadata: { promptTokenCount: u.input, candidatesTokenCount: u.output, totalTokenCount: u.input + u.output }, modelVersion: model, responseId: nextId() };
  }
  // (A model declines a request that says "refuse me": OpenAI's refusal, content null.)
  const refuse = provider === 'openai' && /refuse me/.test(lastUserText(provider, body));
  const message = answer.toolCall
    ? { role: 'assistant', content: null, tool_calls: [{ id: provider === 'mistral' ? nextId() : `call_${nextId()}`, type: 'function', function: { name: answer.toolCall.name, arguments: JSON.stringify(answer.toolCall.args) } }] }
    : refuse ? { role: 'assistant', content: null, refusal: 'I cannot help with that.' } : { role: 'assistant', content: answer.text };
  // (Asked for logprobs, OpenAI gives one entry a token, and its system_fingerprint.)
  const own = provider === 'openai' && body.logprobs === true && !answer.toolCall && !refuse;
  const logprobs = own ? { content: words(answer.text).map(logprobOf), refusal: null } : null;
  return { id: `chatcmpl-${nextId()}`, object: 'chat.completion', created: 1700000000, model, choices: [{ index: 0, message, logprobs, finish_reason: answer.toolCall ? 'tool_calls' : 'stop' }], usage: { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output, prompt_tokens_details: { cached_tokens: 0 } }, ...(own ? { system_fingerprint: 'fp_fake' } : {}) };
}

// A token's logprob entry, as OpenAI writes one (the fake's tokens are its words).
function logprobOf(token, i) {
  return { token, logprob: -0.25 * (i + 1), bytes: [...Buffer.from(token)], top_logprobs: [] };
}

// ---- OpenAI's Responses API ----
const responsesKept = new Map(); // response id -> the conversation's items (input and output)
const responsesItems = new Map(); // output item id -> the item
// An input item that names an earlier output item by id alone (item_reference, or a message /
// function_call with only its id).
const referenceId = (item) => (item.type === 'item_reference' ? item.id : (!item.type || item.type === 'message') && item.content === undefined && item.id ? item.id : undefined);
const responsesKnownKeys = new Set(['model', 'input', 'instructions', 'tools', 'tool_choice', 'parallel_tool_calls', 'text', 'max_output_tokens', 'temperature', 'top_p', 'reasoning', 'metadata', 'store', 'previous_response_id', 'stream', 'stream_options', 'user', 'safety_identifier', 'include', 'truncation', 'service_tier', 'prompt_cache_key', 'prompt_cache_retention', 'top_logprobs', 'max_tool_calls', 'background', 'prompt', 'conversation']);
const responsesToolTypes = new Set(['function', 'web_search', 'web_search_preview', 'file_search', 'code_interpreter', 'mcp', 'image_generation', 'computer_use_preview', 'local_shell', 'custom']);
const responsesItemTypes = new Set(['message', 'function_call', 'function_call_output', 'reasoning', 'item_reference', 'web_search_call', 'file_search_call', 'computer_call', 'computer_call_output', 'code_interpreter_call', 'image_generation_call', 'mcp_call', 'mcp_list_tools']);
const isReasoningModel = (model) => /^(o[134](-|$)|gpt-5(?!.*-chat))/.test(model);
const responsesInput = (body) => (typeof body.input === 'string' ? [{ type: 'message', role: 'user', content: body.input }] : body.input || []);

function validateResponses(req, body) {
  const bad = (status, message) => ({ status, message });
  if (req.headers.authorization !== `Bearer ${KEY}`) return bad(401, 'Incorrect API key provided.');
  for (const k of Object.keys(body)) if (!responsesKnownKeys.has(k)) return bad(400, `Unknown parameter: '${k}'.`);
  if (typeof body.model !== 'string') return bad(400, 'Missing required parameter: \'model\'.');
  if (body.input === undefined && body.prompt === undefined) return bad(400, 'Missing required parameter: \'input\'.');
  if (body.previous_response_id !== undefined && !responsesKept.has(body.previous_response_id)) return bad(400, `Previous response with id '${body.previous_response_id}' not found.`);
  for (const [i, t] of (body.tools || []).entries()) {
    if (!responsesToolTypes.has(t.type)) return bad(400, `Invalid value: '${t.type}'. tools[${i}].type`);
    if (t.type === 'function' && typeof t.name !== 'string') return bad(400, `Missing required parameter: 'tools[${i}].name'.`);
  }
  for (const [i, item] of responsesInput(body).entries()) {
    const type = item.type || 'message';
    if (!responsesItemTypes.has(type)) return bad(400, `Invalid value: '${type}'. input[${i}].type`);
    const ref = referenceId(item);
    if (ref !== undefined && !responsesItems.has(ref)) return bad(400, `Item with id '${ref}' not found.`);
  }
  if (isReasoningModel(body.model)) {
    for (const k of ['temperature', 'top_p']) if (k in body) return bad(400, `Unsupported parameter: '${k}' is not supported with this model.`);
  }
  return null;
}

// The conversation as the chat-shaped body planAnswer reads.
function responsesAsChat(body) {
  const items = [...(body.previous_response_id ? responsesKept.get(body.previous_response_id) : []), ...responsesInput(body)]
    .map((item) => (referenceId(item) !== undefined ? responsesItems.get(referenceId(item)) : item));
  const messages = [];
  for (const item of items) {
    const type = item.type || 'message';
    if (type === 'message') {
      const content = typeof item.content === 'string' ? item.content
        : (item.content || []).map((p) => (p.type === 'input_image' ? { type: 'image_url' } : { type: 'text', text: p.text ?? p.refusal ?? '' }));
      messages.push({ role: item.role, content });
    } else if (type === 'function_call') {
      messages.push({ role: 'assistant', content: null, tool_calls: [{ id: item.call_id, function: { name: item.name, arguments: item.arguments } }] });
    } else if (type === 'function_call_output') {
      messages.push({ role: 'tool', tool_call_id: item.call_id, content: String(item.output) });
    }
  }
  const tools = (body.tools || []).filter((t) => t.type === 'function').map((t) => ({ type: 'function', function: { name: t.name } }));
  const format = body.text?.format;
  return { messages, tools, response_format: format?.type === 'json_schema' ? { type: 'json_schema', json_schema: { schema: format.schema } } : undefined };
}

const hexId = () => Array.from({ length: 48 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');

// The output items of an answer, and the whole response object.
function responsesAnswer(model, body) {
  const chat = responsesAsChat(body);
  const answer = planAnswer('openai', chat);
  const output = [];
  if (isReasoningModel(model) || body.reasoning) {
    const item = { id: `rs_${hexId()}`, type: 'reasoning', summary: [] };
    if ((body.include || []).includes('reasoning.encrypted_content')) item.encrypted_content = `enc_${nextId()}`;
    output.push(item);
  }
  if ((body.tools || []).some((t) => t.type === 'web_search' || t.type === 'web_search_preview')) {
    output.push({ id: `ws_${hexId()}`, type: 'web_search_call', status: 'completed', action: { type: 'search', query: lastUserText('openai', chat) } });
  }
  if (answer.toolCall) {
    output.push({ id: `fc_${hexId()}`, type: 'function_call', status: 'completed', call_id: `call_${nextId()}`, name: answer.toolCall.name, arguments: JSON.stringify(answer.toolCall.args) });
  } else {
    output.push({ id: `msg_${hexId()}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: answer.text, annotations: [], logprobs: [] }] });
  }
  const u = usageFor(chat, answer.text || '');
  const reasoningTokens = output[0].type === 'reasoning' ? 5 : 0;
  const response = {
    id: `resp_${hexId()}`, object: 'response', created_at: 1700000000, status: 'completed', background: false, error: null, incomplete_details: null,
    instructions: body.instructions ?? null, max_output_tokens: body.max_output_tokens ?? null, max_tool_calls: body.max_tool_calls ?? null, model, output,
    parallel_tool_calls: body.parallel_tool_calls ?? true, previous_response_id: body.previous_response_id ?? null, prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: body.reasoning?.effort ?? null, summary: body.reasoning?.summary ?? null }, safety_identifier: null, service_tier: body.service_tier ?? 'default',
    store: body.store ?? true, temperature: body.temperature ?? 1, text: body.text ?? { format: { type: 'text' } }, tool_choice: body.tool_choice ?? 'auto', tools: body.tools ?? [],
    top_logprobs: body.top_logprobs ?? 0, top_p: body.top_p ?? 1, truncation: body.truncation ?? 'disabled',
    usage: { input_tokens: u.input, input_tokens_details: { cached_tokens: 0 }, output_tokens: u.output + reasoningTokens, output_tokens_details: { reasoning_tokens: reasoningTokens }, total_tokens: u.input + u.output + reasoningTokens },
    user: null, metadata: body.metadata ?? {},
  };
  if (body.store !== false) {
    for (const item of output) responsesItems.set(item.id, item);
    const prior = body.previous_response_id ? responsesKept.get(body.previous_response_id) : [];
    responsesKept.set(response.id, [...prior, ...responsesInput(body), ...output]);
  }
  return response;
}

// The typed events of a response, in OpenAI's order.
function responsesFrames(response, { terminator = true } = {}) {
  let seq = 0;
  const ev = (type, obj) => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: seq++, ...obj })}\n\n`;
  const frames = [];
  const pending = { ...response, status: 'in_progress', output: [], usage: null };
  frames.push(ev('response.created', { response: pending }));
  frames.push(ev('response.in_progress', { response: pending }));
  response.output.forEach((item, output_index) => {
    if (item.type === 'message') {
      const text = item.content[0].text;
      frames.push(ev('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', content: [] } }));
      frames.push(ev('response.content_part.added', { item_id: item.id, output_index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }));
      for (const w of words(text)) frames.push(ev('response.output_text.delta', { item_id: item.id, output_index, content_index: 0, delta: w, logprobs: [] }));
      frames.push(ev('response.output_text.done', { item_id: item.id, output_index, content_index: 0, text, logprobs: [] }));
      frames.push(ev('response.content_part.done', { item_id: item.id, output_index, content_index: 0, part: item.content[0] }));
    } else if (item.type === 'function_call') {
      frames.push(ev('response.output_item.added', { output_index, item: { ...item, status: 'in_progress', arguments: '' } }));
      frames.push(ev('response.function_call_arguments.delta', { item_id: item.id, output_index, delta: item.arguments.slice(0, 4) }));
      frames.push(ev('response.function_call_arguments.delta', { item_id: item.id, output_index, delta: item.arguments.slice(4) }));
      frames.push(ev('response.function_call_arguments.done', { item_id: item.id, output_index, arguments: item.arguments }));
    } else if (item.type === 'web_search_call') {
      frames.push(ev('response.output_item.added', { output_index, item: { id: item.id, type: item.type, status: 'in_progress' } }));
      frames.push(ev('response.web_search_call.in_progress', { item_id: item.id, output_index }));
      frames.push(ev('response.web_search_call.searching', { item_id: item.id, output_index }));
      frames.push(ev('response.web_search_call.completed', { item_id: item.id, output_index }));
    } else {
      frames.push(ev('response.output_item.added', { output_index, item }));
    }
    frames.push(ev('response.output_item.done', { output_index, item }));
  });
  if (terminator) frames.push(ev('response.completed', { response }));
  return frames;
}

// ---- embeddings ----
function validateEmbeddings(provider, req, body, model) {
  const bad = (status, message) => ({ status, message });
  if (provider === 'gemini') {
    if (req.headers['x-goog-api-key'] !== KEY) return bad(400, 'API key not valid. Please pass a valid API key.');
    if (!Array.isArray(body.requests) || body.requests.length === 0) return bad(400, 'requests: required');
    for (const [i, r] of body.requests.entries()) {
      if (r.model !== `models/${model}`) return bad(400, `requests[${i}].model: must be models/${model}`);
      if (!Array.isArray(r.content?.parts) || typeof r.content.parts[0]?.text !== 'string') return bad(400, `requests[${i}].content: required`);
    }
    return null;
  }
  if (req.headers.authorization !== `Bearer ${KEY}`) return bad(401, 'Incorrect API key provided.');
  if (typeof body.model !== 'string') return bad(400, 'you must provide a model parameter');
  if (!Array.isArray(body.input) && typeof body.input !== 'string') return bad(400, "'input' is a required property");
  if (body.encoding_format !== undefined && !['float', 'base64'].includes(body.encoding_format)) return bad(400, 'encoding_format: invalid');
  if (provider === 'mistral' && body.dimensions !== undefined) return bad(422, 'dimensions: Extra inputs are not permitted');
  return null;
}

const fakeVector = (text, dims) => {
  let h = 0;
  for (const c of String(text)) h = (h * 31 + c.codePointAt(0)) % 1000003;
  return Array.from({ length: dims }, (_, i) => ((h + i * 7919) % 1000) / 1000 - 0.5);
};

function embeddingAnswer(provider, model, body) {
  if (provider === 'gemini') {
    return { embeddings: body.requests.map((r) => ({ values: fakeVector(r.content.parts[0].text, r.outputDimensionality || 8) })) };
  }
  const inputs = typeof body.input === 'string' ? [body.input] : body.input;
  const dims = body.dimensions || body.output_dimension || 8;
  let data = inputs.map((t, index) => {
    const v = fakeVector(Array.isArray(t) ? t.join(',') : t, dims);
    return { object: 'embedding', index, embedding: body.encoding_format === 'base64' ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v };
  });
  if (provider === 'compat') data = data.reverse();
  const tokens = inputs.reduce((n, t) => n + (Array.isArray(t) ? t.length : Math.ceil(t.length / 4)), 0);
  return { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
}

// A stream as a list of raw SSE frames (strings) plus where faults may cut in.
function streamFrames(provider, model, body, answer, { terminator = true } = {}) {
  const u = usageFor(body, answer.text || '');
  const frames = [];
  if (provider === 'anthropic') {
    const ev = (type, obj) => `event: ${type}\ndata: ${JSON.stringify({ type, ...obj })}\n\n`;
    const cache = anthropicCache(body);
    frames.push(ev('message_start', { message: { id: `msg_${nextId()}`, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: u.input, output_tokens: 1, cache_creation_input_tokens: cache.write, cache_read_input_tokens: cache.read } } }));
    let index = 0;
    if (body.thinking?.type === 'enabled') {
      frames.push(ev('content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: 'Let me think ' } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'thinking_delta', thinking: 'about it.' } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'signature_delta', signature: fakeSignature('Let me think about it.') } }));
      frames.push(ev('content_block_stop', { index }));
      index += 1;
    }
    if (answer.toolCall) {
      frames.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: `toolu_${nextId()}`, name: answer.toolCall.name, input: {} } }));
      const json = JSON.stringify(answer.toolCall.args);
      frames.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: json.slice(0, 5) } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: json.slice(5) } }));
    } else if (searchesTheWeb(body)) {
      const web = webSearchBlocks(lastUserText(provider, body));
      frames.push(ev('content_block_start', { index, content_block: { ...web.call, input: {} } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: JSON.stringify(web.call.input) } }));
      frames.push(ev('content_block_stop', { index }));
      index += 1;
      frames.push(ev('content_block_start', { index, content_block: web.results }));
      frames.push(ev('content_block_stop', { index }));
      index += 1;
      frames.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: 'Found it: ' } }));
      frames.push(ev('content_block_stop', { index }));
      index += 1;
      frames.push(ev('content_block_start', { index, content_block: { type: 'text', text: '', citations: [] } }));
      frames.push(ev('content_block_delta', { index, delta: { type: 'citations_delta', citation: web.citation } }));
      for (const w of words(answer.text)) frames.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: w } }));
    } else {
      frames.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }));
      frames.push(ev('ping', {}));
      for (const w of words(answer.text)) frames.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: w } }));
    }
    frames.push(ev('content_block_stop', { index }));
    const searched = !answer.toolCall && searchesTheWeb(body) ? { server_tool_use: { web_search_requests: 1 } } : {};
    frames.push(ev('message_delta', { delta: { stop_reason: answer.toolCall ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: u.output, ...searched } }));
    if (terminator) frames.push(ev('message_stop', {}));
    return frames;
  }
  if (provider === 'gemini') {
    const chunk = (parts, finish) => `data: ${JSON.stringify({ candidates: [{ content: { parts, role: 'model' }, ...(finish ? { finishReason: 'STOP' } : {}), index: 0 }], usageMetadata: { promptTokenCount: u.input, candidatesTokenCount: u.output, totalTokenCount: u.input + u.output }, modelVersion: model })}\r\n\r\n`;
    if (answer.toolCall) {
      frames.push(chunk([geminiCallPart(model, answer.toolCall)], terminator));
    } else {
      const ws = words(answer.text);
      ws.forEach((w, i) => frames.push(chunk([{ text: w }], terminator && i === ws.length - 1)));
    }
    return frames;
  }
  const id = `chatcmpl-${nextId()}`;
  const includeUsage = provider === 'mistral' || body.stream_options?.include_usage;
  const own = provider === 'openai' && body.logprobs === true && !answer.toolCall;
  const chunk = (delta, finish = null, extra = {}, logprobs = null) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1700000000, model, ...(own ? { system_fingerprint: 'fp_fake' } : {}), choices: [{ index: 0, delta, logprobs, finish_reason: finish }], ...extra })}\n\n`;
  frames.push(chunk({ role: 'assistant', content: '' }));
  if (own) {
    words(answer.text).forEach((w, i) => frames.push(chunk({ content: w }, null, {}, { content: [logprobOf(w, i)], refusal: null })));
  } else if (answer.toolCall) {
    const json = JSON.stringify(answer.toolCall.args);
    const callId = provider === 'mistral' ? nextId() : `call_${nextId()}`;
    frames.push(chunk({ tool_calls: [{ index: 0, id: callId, type: 'function', function: { name: answer.toolCall.name, arguments: '' } }] }));
    frames.push(chunk({ tool_calls: [{ index: 0, function: { arguments: json.slice(0, 4) } }] }));
    frames.push(chunk({ tool_calls: [{ index: 0, function: { arguments: json.slice(4) } }] }));
  } else {
    for (const w of words(answer.text)) frames.push(chunk({ content: w }));
  }
  const usage = { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output };
  if (provider === 'mistral') {
    frames.push(chunk({}, answer.toolCall ? 'tool_calls' : 'stop', { usage }));
  } else {
    frames.push(chunk({}, answer.toolCall ? 'tool_calls' : 'stop'));
    if (includeUsage) frames.push(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created: 1700000000, model, choices: [], usage: { ...usage, prompt_tokens_details: { cached_tokens: 0 } } })}\n\n`);
  }
  if (terminator) frames.push('data: [DONE]\n\n');
  return frames;
}

export function startFakes({ port = 0, host = '127.0.0.1' } = {}) {
  const stats = {};
  const aborted = {};
  const last = {};
  const counters = {};
  const sockets = new Set();
  const seen = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && url.pathname === '/_seen') return sendJson(res, 200, seen);
    if (req.method === 'GET' && url.pathname === '/_slow_image.png') return; // never answers
    if (req.method === 'GET' && url.pathname === '/_not_image.png') {
      res.writeHead(200, { 'content-type': 'image/png' });
      return res.end('<html>not an image</html>');
    }
    if (req.method === 'GET' && url.pathname === '/_page.html') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<html>internal page</html>');
    }
    // A picture to link to by URL (for providers that need the bytes, the gateway fetches it).
    if (req.method === 'GET' && url.pathname === '/_image.png') {
      const png = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==', 'base64');
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      return res.end(png);
    }
    if (req.method === 'GET' && url.pathname === '/_stats') return sendJson(res, 200, { requests: stats, aborted });
    if (req.method === 'GET' && url.pathname.startsWith('/_last/')) return sendJson(res, 200, last[url.pathname.slice(7)] ?? null);
    if (req.method === 'POST' && url.pathname === '/_reset') { for (const k of Object.keys(stats)) delete stats[k]; for (const k of Object.keys(counters)) delete counters[k]; return sendJson(res, 200, {}); }
    let provider; let model; let stream = false; let embeddings = false; let responses = false;
    let m;
    if ((m = url.pathname.match(/^\/(openai|mistral|compat)\/v1\/chat\/completions$/))) provider = m[1];
    else if (url.pathname === '/openai/v1/responses') { provider = 'openai'; responses = true; }
    else if ((m = url.pathname.match(/^\/(openai|mistral|compat)\/v1\/embeddings$/))) { provider = m[1]; embeddings = true; }
    else if ((m = url.pathname.match(/^\/gemini\/v1beta\/models\/([^:]+):batchEmbedContents$/))) { provider = 'gemini'; model = decodeURIComponent(m[1]); embeddings = true; }
    else if (url.pathname === '/anthropic/v1/messages') provider = 'anthropic';
    else if ((m = url.pathname.match(/^\/gemini\/v1beta\/models\/([^:]+):(generateContent|streamGenerateContent)$/))) {
      provider = 'gemini'; model = decodeURIComponent(m[1]); stream = m[2] === 'streamGenerateContent';
      if (stream && url.searchParams.get('alt') !== 'sse') return sendJson(res, 400, errorShapes.gemini(400, 'this fake streams only with alt=sse'));
      if (url.searchParams.has('key')) return sendJson(res, 400, errorShapes.gemini(400, 'the API key must not be sent in the URL (x-goog-api-key)'));
    } else {
      return sendJson(res, 404, { error: { message: `no route ${req.method} ${url.pathname}`, type: 'invalid_request_error' } });
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body;
      try { body = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch {
        return sendJson(res, 400, providerError(provider, 400, 'We could not parse the JSON body of your request.'));
      }
      if (provider !== 'gemini') { model = body.model; stream = body.stream === true; }
      last[provider] = { headers: req.headers, body, url: req.url };
      const key = `${provider}/${model}`;
      stats[key] = (stats[key] || 0) + 1;
      // A caller that goes away before the answer is complete is counted: the gateway must
      // cancel its upstream call when its own client disconnects.
      res.on('close', () => { if (!res.writableFinished) aborted[key] = (aborted[key] || 0) + 1; });
      const invalid = embeddings ? validateEmbeddings(provider, req, body, model) : responses ? validateResponses(req, body) : validate(provider, req, body);
      if (invalid) return sendJson(res, invalid.status, providerError(provider, invalid.status, invalid.message));
      const fault = String(model || '');
      let f;
      if ((f = fault.match(/^fail-(\d{3})/))) {
        const status = Number(f[1]);
        const headers = status === 429 ? { 'retry-after': '0' } : {};
        return sendJson(res, status, providerError(provider, status, `injected ${status}`), headers);
      }
      if ((f = fault.match(/^(flaky|ratelimit)-(\d+)/))) {
        counters[key] = (counters[key] || 0) + 1;
        if (counters[key] <= Number(f[2])) {
          if (f[1] === 'ratelimit') return sendJson(res, 429, providerError(provider, 429, 'injected rate limit'), { 'retry-after': '0' });
          return sendJson(res, 503, providerError(provider, 503, 'injected unavailable'));
        }
      }
      if (fault.startsWith('stall-headers')) return; // never answer; the socket stays open
      if (fault.startsWith('leak-key')) {
        return sendJson(res, 401, providerError(provider, 401,
          'Incorrect API key provided: sk-proj-LEAKEDLEAKEDLEAKED1234. Authorization: Bearer tok_LEAKEDLEAKED99'));
      }
      if (fault.startsWith('latin1-error')) {
        const page = Buffer.from('<h1>Dienst nicht verf\u00fcgbar</h1>', 'latin1');  // 0xFC, not UTF-8
        res.writeHead(503, { 'content-type': 'text/html; charset=iso-8859-1', 'content-length': page.length });
        return res.end(page);
      }
      if (fault.startsWith('sse-flood') && stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: ');
        const chunk = 'x'.repeat(64 * 1024);
        const flood = () => { if (!res.destroyed && res.write(chunk)) setImmediate(flood); else if (!res.destroyed) res.once('drain', flood); };
        return flood();
      }
      if (embeddings) return sendJson(res, 200, embeddingAnswer(provider, model, body));
      const terminator = !fault.startsWith('no-terminator');
      let frames;
      if (responses) {
        const response = responsesAnswer(model, body);
        if (!stream) return sendJson(res, 200, response);
        frames = responsesFrames(response, { terminator });
      } else {
        const answer = planAnswer(provider, body);
        if (!stream) return sendJson(res, 200, jsonAnswer(provider, model, body, answer));
        frames = streamFrames(provider, model, body, answer, { terminator });
      }
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
      const cutAfter = fault.startsWith('stall-first-token') ? 1 : /^(stall-mid|cut-mid|malformed)/.test(fault) ? 2 : Infinity;
      const trickle = (f = fault.match(/^trickle-(\d+)/)) ? Number(f[1]) : 0;
      let i = 0;
      const pump = () => {
        if (res.destroyed) return;
        if (i >= cutAfter) {
          // Let the frames already written reach the gateway, then reset the connection.
          if (fault.startsWith('cut-mid')) return setTimeout(() => req.socket.destroy(), 50);
          if (fault.startsWith('malformed')) { res.write('data: {"choices": [oops\n\n'); return res.end(); }
          return; // stall-mid / stall-first-token: keep the socket open, send nothing more
        }
        if (i >= frames.length) return res.end();
        res.write(frames[i++]);
        if (trickle) setTimeout(pump, trickle); else pump();
      };
      pump();
    });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  server.keepAliveTimeout = 30000;
  return new Promise((resolve) => {
    server.listen(port, host, () => {
      const p = server.address().port;
      const base = `http://${host}:${p}`;
      resolve({
        port: p,
        base,
        urls: { openai: `${base}/openai/v1`, mistral: `${base}/mistral/v1`, compat: `${base}/compat/v1`, anthropic: `${base}/anthropic/v1`, gemini: `${base}/gemini/v1beta` },
        stats,
        aborted,
        seen,
        last,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
      });
    });
  });
}

// Standalone: `node fake_upstreams.mjs [port]` (the gateway benchmark's instant upstream).
if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await startFakes({ port: Number(process.argv[2] || 0) });
  console.log(JSON.stringify({ port: f.port, urls: f.urls }));
}
