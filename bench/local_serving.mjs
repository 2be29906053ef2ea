// Streaming load for one OpenAI-compatible chat endpoint (iris serve or llama-server), used by
// bench/local_serving.sh. Prints one JSON object on stdout.
//
//   node bench/local_serving.mjs --url http://127.0.0.1:PORT --model NAME --mode MODE [options]
//
// Modes:
//   calibrate   prints {"words": W, "prompt_tokens": P}: the number of words whose question
//               reaches --prompt-tokens prompt tokens on this server (tokenizers differ).
//   load        --clients N closed-loop clients, each sending --requests R streaming questions
//               of --words words (every one distinct, so no shared prefix beyond the template)
//               for --max-tokens tokens; every --image-every'th request (0: none) carries the
//               next file of --images (comma list). Reports output tok/s over the wall time,
//               p50/p99 time to first token and p50/p99 inter-token latency (gaps between
//               streamed content events, divided by the tokens each event carried where the
//               server reports them).
//   same-image  two questions about the same --images file, one after the other: the time to
//               first token of each and their ratio.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' },
    model: { type: 'string' },
    mode: { type: 'string', default: 'load' },
    clients: { type: 'string', default: '1' },
    requests: { type: 'string', default: '2' },
    words: { type: 'string', default: '150' },
    'prompt-tokens': { type: 'string', default: '200' },
    'max-tokens': { type: 'string', default: '128' },
    images: { type: 'string', default: '' },
    'image-every': { type: 'string', default: '0' },
    extra: { type: 'string', default: '{}' },
    seed: { type: 'string', default: '1' },
  },
});
if (!a.url || !a.model) {
  console.error('local_serving.mjs: --url and --model are required');
  process.exit(2);
}
const extra = JSON.parse(a.extra);
const maxTokens = Number(a['max-tokens']);

// Plain words; each server's tokenizer turns them into however many tokens it does, which the
// calibration measures.
const WORDS = (
  'time year people way day man thing woman life child world school state family student ' +
  'group country problem hand part place case week company system program question work ' +
  'government number night point home water room mother area money story fact month lot right ' +
  'study book eye job word business issue side kind head house service friend father power ' +
  'hour game line end member law car city community name president team minute idea kid body ' +
  'information back parent face others level office door health person art war history party ' +
  'result change morning reason research girl guy moment air teacher force education light'
).split(' ');

let rng = Number(a.seed) >>> 0 || 1;
function next() {  // xorshift32: the same questions in every run
  rng ^= rng << 13; rng >>>= 0;
  rng ^= rng >>> 17;
  rng ^= rng << 5; rng >>>= 0;
  return rng;
}
function question(id, words) {
  const out = [`Question ${id}:`];
  for (let i = 1; i < words; i++) out.push(WORDS[next() % WORDS.length]);
  return out.join(' ') + '?';
}

const imageCache = new Map();
function imageUrl(file) {
  if (!imageCache.has(file)) {
    const mime = file.endsWith('.png') ? 'image/png' : 'image/jpeg';
    imageCache.set(file, `data:${mime};base64,${readFileSync(file).toString('base64')}`);
  }
  return imageCache.get(file);
}

// One streaming request. Returns {start, first, events: [[t, tokens]], tokens, prompt_tokens}.
async function ask(text, image, maxTok) {
  const content = image
    ? [{ type: 'image_url', image_url: { url: imageUrl(image) } }, { type: 'text', text }]
    : text;
  const body = {
    model: a.model, stream: true, stream_options: { include_usage: true },
    max_tokens: maxTok, temperature: 0,
    messages: [{ role: 'user', content }], ...extra,
  };
  const start = performance.now();
  const res = await fetch(`${a.url}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
  const decoder = new TextDecoder();
  let buf = '';
  let first = 0;
  const events = [];
  let usage = null;
  let chunks = 0;
  for await (const part of res.body) {
    buf += decoder.decode(part, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of frame.split('\n')) {
        if (!line.startsWith('data:')) continue;
        const data = line.slice(5).trim();
        if (data === '[DONE]') continue;
        const ev = JSON.parse(data);
        if (ev.usage) usage = ev.usage;
        const delta = ev.choices?.[0]?.delta?.content;
        if (delta) {
          const t = performance.now();
          if (!first) first = t;
          events.push(t);
          chunks++;
        }
      }
    }
  }
  const tokens = usage?.completion_tokens ?? chunks;
  return { start, first, events, tokens, prompt_tokens: usage?.prompt_tokens ?? 0 };
}

function pct(xs, p) {
  if (!xs.length) return null;
  const s = [...xs].sort((x, y) => x - y);
  return +s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)].toFixed(2);
}

async function calibrate() {
  const target = Number(a['prompt-tokens']);
  const p1 = (await ask(question(0, 1), null, 1)).prompt_tokens;
  const probe = 150;
  const p2 = (await ask(question(0, probe), null, 1)).prompt_tokens;
  const perWord = (p2 - p1) / (probe - 1);
  let words = Math.max(1, Math.round(1 + (target - p1) / perWord));
  const got = (await ask(question(1, words), null, 1)).prompt_tokens;
  return { words, prompt_tokens: got, template_tokens: p1, tokens_per_word: +perWord.toFixed(3) };
}

async function load() {
  const clients = Number(a.clients);
  const requests = Number(a.requests);
  const words = Number(a.words);
  const every = Number(a['image-every']);
  const images = a.images ? a.images.split(',') : [];
  let counter = 0;
  let imageIndex = 0;
  const results = [];
  const errors = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    for (let r = 0; r < requests; r++) {
      const id = ++counter;
      const image = every > 0 && images.length && id % every === 0
        ? images[imageIndex++ % images.length] : null;
      try {
        results.push({ image: !!image, ...(await ask(question(id, words), image, maxTokens)) });
      } catch (e) {
        errors.push(String(e.message || e));
      }
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const ttft = [];
  const ttftText = [];
  const itl = [];
  let tokens = 0;
  let promptTokens = 0;
  let events = 0;
  for (const r of results) {
    tokens += r.tokens;
    promptTokens += r.prompt_tokens;
    events += r.events.length;
    if (r.first) {
      ttft.push(r.first - r.start);
      if (!r.image) ttftText.push(r.first - r.start);
    }
    // Tokens per content event: 1 when the server streams each token on its own.
    const per = r.events.length > 1 ? Math.max(1, (r.tokens - 1) / (r.events.length - 1)) : 1;
    for (let i = 1; i < r.events.length; i++) itl.push((r.events[i] - r.events[i - 1]) / per);
  }
  return {
    clients, requests: results.length, errors: errors.length, first_error: errors[0],
    image_requests: results.filter((r) => r.image).length,
    output_tokens: tokens, mean_prompt_tokens: results.length ? Math.round(promptTokens / results.length) : 0,
    tokens_per_event: events ? +(tokens / events).toFixed(3) : null,
    wall_s: +wall.toFixed(3), output_tok_s: +(tokens / wall).toFixed(1),
    ttft_ms: { p50: pct(ttft, 50), p99: pct(ttft, 99) },
    ttft_text_ms: { p50: pct(ttftText, 50), p99: pct(ttftText, 99) },
    itl_ms: { p50: pct(itl, 50), p99: pct(itl, 99), samples: itl.length },
  };
}

async function sameImage() {
  const image = a.images.split(',')[0];
  const first = await ask('Describe this picture in one sentence.', image, 8);
  const second = await ask('What colours are in this picture?', image, 8);
  const t1 = first.first - first.start;
  const t2 = second.first - second.start;
  return {
    first_ttft_ms: +t1.toFixed(1), second_ttft_ms: +t2.toFixed(1),
    speedup: +(t1 / t2).toFixed(2), prompt_tokens: first.prompt_tokens,
  };
}

const modes = { calibrate, load, 'same-image': sameImage };
if (!modes[a.mode]) {
  console.error(`local_serving.mjs: unknown --mode ${a.mode}`);
  process.exit(2);
}
console.log(JSON.stringify(await modes[a.mode]()));
