// Constant-rate load (wrk has no fixed-rate mode): sends RATE requests per second over CONNS
// keep-alive connections for SECONDS and prints latency percentiles as JSON. Used to compare
// the added latency of a gateway against calling its upstream directly, at the same rate.
import { Pool } from 'undici';

const [url, rate = '1000', seconds = '10', conns = '10'] = process.argv.slice(2);
const body = process.env.BENCH_BODY ||
  '{"model":"fast","messages":[{"role":"user","content":"Say hello in five words."}],"max_tokens":16}';
const extra = {};
for (const kv of (process.env.BENCH_HEADERS || '').split(';').filter(Boolean)) {
  const i = kv.indexOf(':');
  extra[kv.slice(0, i)] = kv.slice(i + 1);
}
const u = new URL(url);
const pool = new Pool(u.origin, { connections: Number(conns), pipelining: 1 });
const lat = [];
let errors = 0;
const total = Number(rate) * Number(seconds);
const start = performance.now();
const pending = [];
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / Number(rate);
  const wait = due - performance.now();
  if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  const t0 = performance.now();
  pending.push(pool.request({ path: u.pathname, method: 'POST', body, headers: { 'content-type': 'application/json', authorization: 'Bearer bench-key', ...extra } })
    .then(async (res) => { await res.body.text(); if (res.statusCode !== 200) errors++; lat.push(performance.now() - t0); })
    .catch(() => { errors++; }));
}
await Promise.all(pending);
await pool.close();
lat.sort((a, b) => a - b);
const q = (p) => lat.length ? Number(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))].toFixed(3)) : null;
console.log(JSON.stringify({ requests: lat.length, errors, achieved_rps: Number((lat.length / ((performance.now() - start) / 1000)).toFixed(1)), p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: q(1) }));
