// A fake Hugging Face hub on loopback with the real URL shapes and headers: the model API
// (siblings with LFS sha256), /resolve/<rev>/<file> with X-Repo-Commit and ETag, and a 302 to a
// CDN path carrying X-Linked-Etag for LFS files (the weights). Serves one checkpoint folder
// under one repo id.
import http from 'node:http';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export async function startFakeHub({ repo, dir, commit = 'c0ffee0000000000000000000000000000000001' }) {
  const files = {};
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith('goldens')) continue;  // test fixtures, not part of a hub checkpoint
    const bytes = fs.readFileSync(path.join(dir, name));
    const lfs = name.endsWith('.safetensors');
    const etag = lfs ? crypto.createHash('sha256').update(bytes).digest('hex')
      : crypto.createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
    files[name] = { bytes, lfs, etag };
  }
  const log = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    log.push(`${req.method} ${url.pathname}`);
    const send = (status, headers, body = '') => { res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers }); res.end(req.method === 'HEAD' ? undefined : body); };
    if (url.pathname.startsWith(`/api/models/${repo}/revision/`)) {
      const siblings = Object.entries(files).map(([rfilename, f]) => ({ rfilename, size: f.bytes.length, ...(f.lfs ? { lfs: { sha256: f.etag, size: f.bytes.length } } : {}) }));
      return send(200, { 'content-type': 'application/json' }, JSON.stringify({ id: repo, sha: commit, siblings }));
    }
    if (url.pathname.startsWith('/api/models/')) return send(404, { 'x-error-code': 'RepoNotFound' }, '{"error":"Repository not found"}');
    const resolve = `/${repo}/resolve/`;
    if (url.pathname.startsWith(resolve)) {
      const name = decodeURIComponent(url.pathname.slice(resolve.length).split('/').slice(1).join('/'));
      const f = files[name];
      if (!f) return send(404, { 'x-error-code': 'EntryNotFound' });
      if (f.lfs) {
        return send(302, { location: `/cdn/${f.etag}`, etag: '"not-the-blob"', 'x-linked-etag': `"${f.etag}"`, 'x-linked-size': String(f.bytes.length), 'x-repo-commit': commit });
      }
      res.writeHead(200, { 'content-length': f.bytes.length, etag: `W/"${f.etag}"`, 'x-repo-commit': commit });
      return res.end(req.method === 'HEAD' ? undefined : f.bytes);
    }
    if (url.pathname.startsWith('/cdn/')) {
      const f = Object.values(files).find((x) => x.etag === url.pathname.slice(5));
      if (!f) return send(404, {});
      res.writeHead(200, { 'content-length': f.bytes.length, etag: `"${f.etag}"` });
      return res.end(req.method === 'HEAD' ? undefined : f.bytes);
    }
    send(404, {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, log, close: () => new Promise((r) => server.close(r)) };
}
