// Hostile callers against a real `iris serve`: every finding of the security review has a test
// here that fails on a gateway without the defence. Request smuggling through image URLs,
// path and header injection through model names, SSRF, browser attacks (cross-origin POSTs,
// DNS rebinding), breaker poisoning, unbounded work, and leaks of keys and internal addresses.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startIris, yamlFor, postJson } from './harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A request with full control of the head (Host, Origin), which fetch does not allow.
function rawRequest(url, { method = 'GET', headers = {}, body } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json = null;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        resolve({ status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders, text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(typeof body === 'string' ? body : JSON.stringify(body));
    req.end();
  });
}

const imageMessage = (url) => [{ role: 'user', content: [{ type: 'text', text: 'what?' }, { type: 'image_url', image_url: { url } }] }];
const seen = async (iris) => (await fetch(`${iris.fakes.base}/_seen`)).json();
const metricsText = async (iris) => (await fetch(`${iris.url}/metrics`)).text();

describe('with image fetching allowed to private addresses (as the fakes need)', () => {
  let iris;
  before(async () => {
    iris = await startIris({
      yaml: (fakes) => yamlFor(fakes, {
        breakerThreshold: 3,
        extra: `
  local-only:
    targets: [local/smolvlm2]
    retries: 0
  json-only:
    targets: [local/smolvlm2, openai/gpt-4o-mini]
    retries: 0
  many-failures:
    targets: [openai/fail-503-m1, openai/fail-503-m2, openai/fail-503-m3, openai/fail-503-m4]
    retries: 5
  image-deadline:
    targets: [gemini/gemini-2.5-flash]
    retries: 0
    timeouts: { connect_ms: 500, first_token_ms: 700, total_ms: 700 }
limits: { max_images: 4, max_fallback_models: 3, max_attempts: 4, max_metric_models: 20, max_stream_event_bytes: 65536 }
`,
      }).replace('providers:\n', 'providers:\n  dead:      { kind: openai, base_url: http://127.0.0.1:1/v1, api_key_env: FAKE_OPENAI_KEY }\n'),
    });
  });
  after(async () => { await iris?.stop(); });

  test('an image URL with CR/LF cannot smuggle a request onto a connection', async () => {
    const planted = `${iris.fakes.base}/_image.png HTTP/1.1\r\nHost: x\r\n\r\nGET /planted HTTP/1.1\r\nX-Pad: `;
    for (const url of [planted, `${iris.fakes.base}/a b.png`, `${iris.fakes.base}/%zz.png`, `${iris.fakes.base}/\u0000.png`]) {
      const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'gemini/gemini-2.5-flash', messages: imageMessage(url) });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error.message, /messages\[0\]\.content\[1\]: invalid image URL/);
    }
    const lines = await seen(iris);
    assert.ok(!lines.some((l) => l.includes('planted') || l.includes(' b.png')), JSON.stringify(lines));
    // The provider path is untouched: a normal call still gets a normal answer.
    const ok = await postJson(`${iris.url}/v1/chat/completions`, { model: 'openai/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.status, 200, ok.text);
    assert.match(ok.json.choices[0].message.content, /Hello from openai/);
  });

  test('image fetches never carry provider credentials', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'gemini/gemini-2.5-flash', messages: imageMessage(`${iris.fakes.base}/_image.png?probe=1`) });
    assert.equal(r.status, 200, r.text);
    // The fake records every request line; the image GET is there, and the provider call
    // after it used the provider path only.
    const lines = await seen(iris);
    assert.ok(lines.includes('GET /_image.png?probe=1'), JSON.stringify(lines));
  });

  test('model names cannot inject a path, a query, a header or a second request', async () => {
    const bad = [
      'gemini/gemini-2.5-flash?key=x', 'gemini/gemini-2.5-flash#', 'gemini/../../v1/files',
      'gemini/a%2Fb', 'gemini/x\r\nx-injected: 1', 'gemini/x\r\n\r\nGET /planted2 HTTP/1.1',
      'openai/gpt-4o\r\nSet-Cookie: a=b', 'x'.repeat(100_000),
    ];
    for (const model of bad) {
      const r = await postJson(`${iris.url}/v1/chat/completions`, { model, messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, 400, `${JSON.stringify(model).slice(0, 60)}: ${r.text.slice(0, 200)}`);
      assert.match(r.json.error.message, /^model: /);
      assert.equal(r.headers.get('set-cookie'), null);
      assert.ok(r.text.length < 1000, 'the error does not echo a huge name');
      for (const [, v] of r.headers) assert.ok(v.length < 300);
    }
    const r = await postJson(`${iris.url}/v1/chat/completions`, {
      model: 'openai/gpt-4o-mini', models: ['ok-model', 'bad model'], messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /^models\[1\]: /);
    const lines = await seen(iris);
    assert.ok(!lines.some((l) => l.includes('planted2') || l.includes('/v1/files') || l.includes('key=x')), JSON.stringify(lines));
  });

  test('a Gemini model id is one path segment on the wire', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'gemini/gemini-2.5-flash:countTokens', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, r.text);
    const lines = await seen(iris);
    assert.ok(lines.includes('POST /gemini/v1beta/models/gemini-2.5-flash%3AcountTokens:generateContent'), JSON.stringify(lines.slice(-3)));
  });

  test('requests a target cannot serve do not open its breaker for everyone', async () => {
    // Tools and JSON mode are unsupported by the local model: well past the threshold of 3.
    for (let i = 0; i < 6; i++) {
      const r = await postJson(`${iris.url}/v1/chat/completions`, {
        model: 'local-only', messages: [{ role: 'user', content: 'hi' }],
        tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
      });
      assert.equal(r.status, 400, r.text);
      const j = await postJson(`${iris.url}/v1/chat/completions`, {
        model: 'json-only', messages: [{ role: 'user', content: 'hi' }], response_format: { type: 'json_object' },
      });
      assert.equal(j.status, 200, j.text);
      assert.equal(j.json.iris.provider, 'openai');
    }
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'local-only', max_tokens: 2, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.iris.provider, 'local');
    assert.match(await metricsText(iris), /iris_circuit_breaker_state\{target="local\/smolvlm2"\} 0/);
  });

  test('limits: images, fallback lists, provider hints and attempts are bounded', async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
    const images = Array.from({ length: 5 }, () => ({ type: 'image_url', image_url: { url: `data:image/png;base64,${png}` } }));
    let r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'local-only', messages: [{ role: 'user', content: images }] });
    assert.equal(r.status, 400, r.text);
    assert.match(r.json.error.message, /at most 4 images per request/);

    r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'chat', models: ['a', 'b', 'c', 'd'], messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /models: at most 3 entries/);

    // A huge deduplication list is refused in linear time: the worker stays responsive.
    const huge = Array.from({ length: 150_000 }, (_, i) => `m${i}`);
    const t0 = Date.now();
    const health = (async () => { await sleep(50); const h = await fetch(`${iris.url}/healthz`); return { status: h.status, at: Date.now() - t0 }; })();
    r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'chat', provider: { order: huge, only: huge }, models: huge, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 400);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.equal((await health).status, 200);

    // 4 targets x 6 tries would be 24 upstream calls; max_attempts stops at 4.
    r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'many-failures', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(r.status === 502 || r.status === 503, r.text);
    const attempts = r.json.error.message.match(/all (\d+) attempts failed/);
    assert.ok(attempts && Number(attempts[1]) <= 4, r.json.error.message);
    assert.match(r.json.error.message, /limits\.max_attempts/);
  });

  test('an upstream SSE line without end is cut at max_stream_event_bytes, not buffered forever', async () => {
    const t0 = Date.now();
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'openai/sse-flood-a', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r.status, 502, r.text.slice(0, 300));
    assert.match(r.json.error.message, /larger than 65536 bytes/);
    assert.ok(Date.now() - t0 < 5000);
  });

  test('invented model names fold into one metric label', async () => {
    await Promise.all(Array.from({ length: 60 }, (_, i) => postJson(`${iris.url}/v1/chat/completions`, { model: `openai/fail-404-invented-${i}`, messages: [{ role: 'user', content: 'hi' }] })));
    const text = await metricsText(iris);
    const models = new Set([...text.matchAll(/model="([^"]*)"/g)].map((m) => m[1]));
    // 20 admitted names, "other", and "" for requests that reached no model.
    assert.ok(models.size <= 22, `${models.size} model labels: ${[...models].join(' ')}`);
    assert.ok(models.has('other'), [...models].join(' '));
    // Circuit breakers are per target too: invented names share one.
    const targets = new Set([...text.matchAll(/target="([^"]*)"/g)].map((m) => m[1]));
    assert.ok(targets.size <= 21, `${targets.size} breaker targets`);
  });

  test('the route deadline covers image fetches', async () => {
    const t0 = Date.now();
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'image-deadline', messages: imageMessage(`${iris.fakes.base}/_slow_image.png`) });
    assert.equal(r.status, 400, r.text);
    assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
  });

  test('an answer that is not an image is refused with the uniform message', async () => {
    for (const p of ['/_not_image.png', '/_page.html', '/_nope.png']) {
      const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'gemini/gemini-2.5-flash', messages: imageMessage(`${iris.fakes.base}${p}`) });
      assert.equal(r.status, 400, r.text);
      assert.match(r.json.error.message, /could not be fetched as an image/);
      assert.ok(!r.text.includes('internal page'));
    }
  });

  test('upstream error text is redacted and internal addresses are not named', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'openai/leak-key-a', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(r.status >= 400);
    assert.ok(!r.text.includes('LEAKED'), r.text);
    const port = iris.fakes.port;
    const closed = await postJson(`${iris.url}/v1/chat/completions`, { model: 'dead/gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(closed.status >= 500, closed.text);
    assert.ok(!closed.text.includes('127.0.0.1'), closed.text);
    assert.ok(!closed.text.includes(String(port)), closed.text);
  });

  test('request ids are ULIDs', async () => {
    const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.match(r.headers.get('x-iris-request-id'), /^req_[0-9A-HJKMNP-TV-Z]{26}$/);
  });
});

describe('with the default image policy (public addresses only)', () => {
  let iris;
  let internal;
  let internalHits = 0;
  before(async () => {
    // An "internal" service on loopback that must never be reached by a caller's URL.
    internal = http.createServer((req, res) => { internalHits++; res.writeHead(200, { 'content-type': 'image/png' }); res.end('secret'); });
    await new Promise((r) => internal.listen(0, '127.0.0.1', r));
    iris = await startIris({ yaml: (fakes) => yamlFor(fakes).replace('image_fetch: { enabled: true, allow_private: true }', 'image_fetch: { enabled: true }') });
  });
  after(async () => { await iris?.stop(); internal?.close(); });

  test('loopback, private, link-local and metadata addresses are never fetched, in any spelling', async () => {
    const p = internal.address().port;
    const urls = [
      `http://localhost:${p}/x.png`, `http://127.0.0.1:${p}/x.png`, `http://127.1:${p}/x.png`,
      `http://0x7f.1:${p}/x.png`, `http://2130706433:${p}/x.png`, `http://0.0.0.0:${p}/x.png`,
      `http://[::1]:${p}/x.png`, `http://[::ffff:127.0.0.1]:${p}/x.png`, `http://017700000001:${p}/x.png`,
      'http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/latest', 'http://10.0.0.1/x.png',
      'http://192.168.1.1/x.png', `http://127.0.0.1:1/closed.png`,
    ];
    const messages = new Set();
    for (const url of urls) {
      const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'gemini/gemini-2.5-flash', messages: imageMessage(url) });
      assert.equal(r.status, 400, `${url}: ${r.text}`);
      messages.add(r.json.error.message);
    }
    assert.equal(internalHits, 0);
    // One uniform answer: an open port and a closed one look the same.
    assert.equal(messages.size, 1, [...messages].join('\n'));
    assert.ok(![...messages][0].includes('127.0.0.1'));
  });

  test('with image fetching off (the default), image URLs for local/Gemini get a clear 400', async () => {
    const extra = '\n  url-vision:\n    targets: [gemini/gemini-2.5-flash, openai/gpt-4o-mini]\n    retries: 0\n';
    const off = await startIris({ yaml: (fakes) => yamlFor(fakes, { extra }).replace('image_fetch: { enabled: true, allow_private: true }\n', '') });
    try {
      const r = await postJson(`${off.url}/v1/chat/completions`, { model: 'gemini/gemini-2.5-flash', messages: imageMessage(`${off.fakes.base}/_image.png`) });
      assert.equal(r.status, 400);
      assert.match(r.json.error.message, /does not fetch image URLs \(image_fetch\.enabled/);
      assert.ok(!(await seen(off)).some((l) => l.includes('_image.png')));
      // A target that takes URLs itself still can: the route falls over to it.
      const fb = await postJson(`${off.url}/v1/chat/completions`, { model: 'url-vision', messages: imageMessage(`${off.fakes.base}/_image.png`) });
      assert.equal(fb.status, 200, fb.text);
      assert.equal(fb.json.iris.provider, 'openai');
    } finally {
      await off.stop();
    }
  });
});

describe('browsers', () => {
  let iris;
  before(async () => {
    iris = await startIris({ yaml: (fakes) => yamlFor(fakes).replace('server: {', 'server: { cors: { allow_origins: [https://app.example.com] },') });
  });
  after(async () => { await iris?.stop(); });

  const body = { model: 'chat', messages: [{ role: 'user', content: 'hi' }] };

  test('a cross-origin text/plain POST (no preflight) spends nothing', async () => {
    const before = (await (await fetch(`${iris.fakes.base}/_stats`)).json()).requests['openai/gpt-4o-mini'] || 0;
    const r = await rawRequest(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain', origin: 'https://evil.example' }, body });
    assert.equal(r.status, 403, r.text);
    const plain = await rawRequest(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    assert.equal(plain.status, 400, plain.text);
    assert.match(plain.json.error.message, /content-type must be application\/json/);
    const after = (await (await fetch(`${iris.fakes.base}/_stats`)).json()).requests['openai/gpt-4o-mini'] || 0;
    assert.equal(after, before);
  });

  test('DNS rebinding: a foreign Host is refused on a loopback listener', async () => {
    for (const host of ['attacker.example', 'attacker.example:8080', '10.0.0.5']) {
      const r = await rawRequest(`${iris.url}/v1/models`, { headers: { host } });
      assert.equal(r.status, 403, `${host}: ${r.text}`);
      assert.match(r.json.error.message, /server\.allowed_hosts/);
    }
    for (const host of ['localhost', '127.0.0.1', `127.0.0.1:${new URL(iris.url).port}`, '[::1]:8080']) {
      const r = await rawRequest(`${iris.url}/v1/models`, { headers: { host } });
      assert.equal(r.status, 200, `${host}: ${r.text}`);
    }
    const api = await rawRequest(`${iris.url}/api/requests`, { headers: { host: 'attacker.example' } });
    assert.equal(api.status, 403);
  });

  test('CORS: an allowed origin gets a preflight answer and the allow-origin header', async () => {
    const pre = await rawRequest(`${iris.url}/v1/chat/completions`, {
      method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(pre.headers['access-control-allow-headers'], /authorization/);
    const r = await rawRequest(`${iris.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', origin: 'https://app.example.com' }, body });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['access-control-allow-origin'], 'https://app.example.com');
    const other = await rawRequest(`${iris.url}/v1/chat/completions`, { method: 'OPTIONS', headers: { origin: 'https://other.example' } });
    assert.equal(other.status, 403);
  });
});

describe('connections', () => {
  test('idle keep-alive clients beyond the cap do not lock out new clients', async () => {
    const iris = await startIris({ yaml: (fakes) => yamlFor(fakes).replace('server: {', 'server: { max_connections: 50,') });
    const idle = [];
    try {
      const { port } = new URL(iris.url);
      for (let i = 0; i < 120; i++) {
        const s = net.connect(Number(port), '127.0.0.1');
        s.on('error', () => {});
        idle.push(s);
      }
      await sleep(300);
      const t0 = Date.now();
      const r = await postJson(`${iris.url}/v1/chat/completions`, { model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.status, 200, r.text);
      assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
    } finally {
      for (const s of idle) s.destroy();
      await iris.stop();
    }
  });
});
