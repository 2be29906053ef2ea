// Starts the fake upstreams and a real `iris serve` (the binary under test) on loopback, with an
// iris.yaml that points every provider at the fakes. Used by every *.test.mjs here.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFakes } from './fake_upstreams.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
export const irisBin = process.env.IRIS_BIN || path.join(repoRoot, 'build/release/iris');
export const tinyModel = path.join(repoRoot, 'tests/data/smolvlm2/tiny-256m-style');

export function yamlFor(fakes, { extra = '', breakerThreshold = 3 } = {}) {
  return `
server: { listen: 127.0.0.1:0, threads: 2, shutdown_grace_ms: 5000 }
providers:
  openai:    { kind: openai,    base_url: ${fakes.urls.openai},    api_key_env: FAKE_OPENAI_KEY }
  anthropic: { kind: anthropic, base_url: ${fakes.urls.anthropic}, api_key_env: FAKE_ANTHROPIC_KEY }
  gemini:    { kind: gemini,    base_url: ${fakes.urls.gemini},    api_key_env: FAKE_GEMINI_KEY }
  mistral:   { kind: mistral,   base_url: ${fakes.urls.mistral},   api_key_env: FAKE_MISTRAL_KEY }
  groq:      { kind: openai-compatible, base_url: ${fakes.urls.compat}, api_key_env: FAKE_COMPAT_KEY, models: [llama-3.3-70b] }
  nokey:     { kind: openai, base_url: ${fakes.urls.openai}, api_key_env: IRIS_TEST_UNSET_KEY }
  local:     { kind: local, model: ${tinyModel} }
image_fetch: { enabled: true, allow_private: true }
routing:
  backoff_base_ms: 10
  backoff_max_ms: 50
  breaker: { failure_threshold: ${breakerThreshold}, cooldown_ms: 60000 }
models:
  chat:
    targets: [openai/gpt-4o-mini]
  vision:
    targets: [openai/fail-500-v, anthropic/claude-haiku-4-5, local/smolvlm2]
    retries: 1
  flaky:
    targets: [openai/flaky-2-a]
    retries: 2
  flaky-no-retry:
    targets: [openai/flaky-2-b]
    retries: 0
  ratelimited:
    targets: [mistral/ratelimit-1-a]
    retries: 1
  stall-first:
    targets: [openai/stall-headers-a, gemini/gemini-2.5-flash]
    retries: 0
    timeouts: { first_token_ms: 300 }
  stall-first-token:
    targets: [openai/stall-first-token-a, mistral/mistral-small-latest]
    retries: 0
    timeouts: { first_token_ms: 300 }
  stall-mid:
    targets: [openai/stall-mid-a, anthropic/claude-haiku-4-5]
    retries: 0
    timeouts: { idle_ms: 300 }
  cut-mid:
    targets: [openai/cut-mid-a]
    retries: 0
  no-terminator:
    targets: [anthropic/no-terminator-a]
    retries: 0
  malformed-first:
    targets: [gemini/malformed-a]
    retries: 0
  breaker:
    targets: [openai/fail-503-breaker, mistral/mistral-small-latest]
    retries: 0
  bad-request:
    targets: [openai/fail-400-a, anthropic/claude-haiku-4-5]
    retries: 2
  total-timeout:
    targets: [openai/stall-headers-total]
    retries: 0
    timeouts: { connect_ms: 200, first_token_ms: 400, total_ms: 400 }
  trickle:
    targets: [openai/trickle-100-a]
  weighted:
    strategy: weighted
    targets: [{ target: openai/gpt-4o-mini, weight: 3 }, { target: mistral/mistral-small-latest, weight: 1 }]
${extra}`;
}

// Starts fakes + iris. Returns { fakes, url, proc, stderr(), stop() }.
export async function startIris({ yaml, args = [], env = {} } = {}) {
  const fakes = await startFakes();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'iris-e2e-'));
  const configPath = path.join(dir, 'iris.yaml');
  fs.writeFileSync(configPath, yaml ? yaml(fakes) : yamlFor(fakes));
  const proc = spawn(irisBin, ['serve', '--config', configPath, ...args], {
    env: {
      ...process.env,
      FAKE_OPENAI_KEY: 'test-key', FAKE_ANTHROPIC_KEY: 'test-key', FAKE_GEMINI_KEY: 'test-key',
      FAKE_MISTRAL_KEY: 'test-key', FAKE_COMPAT_KEY: 'test-key', HF_HUB_OFFLINE: '1',
      IRIS_DATA_DIR: dir,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr.on('data', (d) => { err += d.toString(); });
  proc.stdout.on('data', (d) => { err += d.toString(); });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`iris serve did not start in 30 s:\n${err}`)), 30000);
    const check = () => {
      const m = err.match(/listening on (http:\/\/[^\s]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    proc.stderr.on('data', check);
    proc.stdout.on('data', check);
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`iris serve exited with ${code}:\n${err}`)); });
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  // A server that dies on its own is a bug worth its whole log (sanitizer reports included).
  let stopping = false;
  proc.on('exit', (code, signal) => {
    if (!stopping && (signal || code !== 0)) {
      console.error(`iris serve exited unexpectedly (code ${code}, signal ${signal}):\n${err}`);
    }
  });
  return {
    fakes,
    url,
    proc,
    dir,
    exited,
    stderr: () => err,
    async stop() {
      stopping = true;
      if (proc.exitCode === null) proc.kill('SIGTERM');
      await exited;
      await fakes.close();
    },
  };
}

export async function postJson(url, body, headers = {}) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, text, json };
}

// Reads an SSE response into [{event, data}] (data parsed when JSON).
export async function readSse(res) {
  const text = await res.text();
  const events = [];
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    let event = '';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('event:')) event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
    }
    const d = data.join('\n');
    let parsed = d;
    try { parsed = JSON.parse(d); } catch { /* [DONE] */ }
    events.push({ event, data: parsed });
  }
  return events;
}
