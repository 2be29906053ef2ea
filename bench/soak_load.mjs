// The soak's load: a fixed request rate against `iris serve`, mixing streamed and plain calls,
// fallbacks, retries, cut streams and caller mistakes, for a fixed time. Every request is
// accounted for: each ends as an expected outcome or as "unexpected" (kept with a sample).
// Samples the gateway's RSS every `sampleSecs` from /proc. Prints one JSON object.
//
//   node bench/soak_load.mjs URL PID SECONDS RATE
import http from 'node:http';
import fs from 'node:fs';

const [url, pid, seconds, rate] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const sampleSecs = Math.max(1, Math.min(30, Math.floor(seconds / 60)));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const target = new URL(url);

// What each kind of request must end as.
const mix = [
  { name: 'plain', weight: 40, body: { model: 'ok', messages: [{ role: 'user', content: 'hello' }] }, expect: [200] },
  { name: 'stream', weight: 30, body: { model: 'ok', stream: true, messages: [{ role: 'user', content: 'hello there' }] }, expect: [200], stream: true },
  { name: 'fallback', weight: 10, body: { model: 'fallback', stream: true, messages: [{ role: 'user', content: 'x' }] }, expect: [200], stream: true },
  // An upstream that only ever answers 429: retried, then 429; once its breaker opens (after
  // failure_threshold of them), 503 until the cooldown's probe.
  { name: 'retry', weight: 5, body: { model: 'retry', messages: [{ role: 'user', content: 'x' }] }, expect: [429, 503] },
  { name: 'cut_stream', weight: 5, body: { model: 'cut', stream: true, messages: [{ role: 'user', content: 'x' }] }, expect: [200], stream: true, streamError: true },
  { name: 'bad_request', weight: 5, body: { model: 'bad model name', messages: [{ role: 'user', content: 'x' }] }, expect: [400] },
  { name: 'upstream_400', weight: 5, body: { model: 'reject', messages: [{ role: 'user', content: 'x' }] }, expect: [400] },
];
const total = mix.reduce((a, m) => a + m.weight, 0);
const pick = (r) => { let x = r * total; for (const m of mix) { if ((x -= m.weight) < 0) return m; } return mix[0]; };

const counts = { sent: 0, done: 0, unexpected: 0 };
const byKind = Object.fromEntries(mix.map((m) => [m.name, { sent: 0, ok: 0, unexpected: 0 }]));
const samples = [];
const latencies = [];

function rssMiB() {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : null;
  } catch { return null; }
}

function one(kind) {
  const body = JSON.stringify(kind.body);
  const t0 = performance.now();
  counts.sent++;
  byKind[kind.name].sent++;
  return new Promise((resolve) => {
    const finish = (ok, why) => {
      counts.done++;
      latencies.push(performance.now() - t0);
      if (ok) byKind[kind.name].ok++;
      else {
        counts.unexpected++;
        byKind[kind.name].unexpected++;
        if (!byKind[kind.name].sample) byKind[kind.name].sample = why;
      }
      resolve();
    };
    const req = http.request({ host: target.hostname, port: target.port, path: '/v1/chat/completions', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (text.length < 65536) text += d; });
      res.on('end', () => {
        if (!kind.expect.includes(res.statusCode)) return finish(false, `status ${res.statusCode}: ${text.slice(0, 200)}`);
        if (kind.stream && res.statusCode === 200) {
          const done = text.includes('data: [DONE]');
          const errored = /^data: \{"error"/m.test(text);
          if (kind.streamError ? !(errored && !done) : !(done && !errored)) return finish(false, `stream: ${text.slice(-200)}`);
        }
        finish(true);
      });
      res.on('error', (e) => finish(false, `response: ${e.message}`));
    });
    req.on('error', (e) => finish(false, `request: ${e.message}`));
    req.end(body);
  });
}

const start = performance.now();
const inflight = new Set();
let rng = 12345;
const rand = () => { rng = (rng * 1103515245 + 12345) % 2147483648; return rng / 2147483648; };
let next = start;
const interval = 1000 / rate;
let lastSample = -Infinity;
while (performance.now() - start < seconds * 1000) {
  const now = performance.now();
  if ((now - start) / 1000 - lastSample >= sampleSecs) {
    lastSample = (now - start) / 1000;
    samples.push([Math.round(lastSample), rssMiB()]);
  }
  // Send every request that is due (a fixed schedule: the rate does not sag when the
  // gateway is slow, which is the point of a soak).
  while (next <= now) {
    const p = one(pick(rand()));
    inflight.add(p);
    p.then(() => inflight.delete(p));
    next += interval;
  }
  await new Promise((r) => setTimeout(r, Math.max(0, Math.min(5, next - performance.now()))));
}
await Promise.all(inflight);
samples.push([Math.round((performance.now() - start) / 1000), rssMiB()]);
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
console.log(JSON.stringify({
  seconds, rate, sent: counts.sent, completed: counts.done, unexpected: counts.unexpected,
  achieved_rate: Math.round(counts.sent / ((performance.now() - start) / 1000)),
  latency_ms: { p50: Number(q(0.5).toFixed(2)), p99: Number(q(0.99).toFixed(2)) },
  by_kind: byKind, rss_mib: samples,
}));
agent.destroy();
