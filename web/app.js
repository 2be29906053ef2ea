// The iris dashboard: polls /api/usage, /api/requests, /api/local and /api/finetune every 5 s
// and draws KPI tiles, SVG charts, the local model's panel, the fine-tuning job's loss curve and
// the recent-requests table. Plain JS, no libraries; every failure shows a banner.
'use strict';

(() => {
  const POLL_MS = 5000;
  const WINDOWS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 };
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    window: WINDOWS[location.hash.slice(1)] ? location.hash.slice(1) : '24h',
    key: '',  // the API key filter (its id); '' for all
    usage: null,
    requests: null,
    local: null,
    finetune: null,
    expanded: new Set(),
    inFlight: false,
    timer: null,
  };

  // ---------------------------------------------------------------------------------------
  // Formatting for people.

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  function fmtMs(ms) {
    if (!isNum(ms)) return '—';
    if (ms < 1) return `${ms.toFixed(2)} ms`;
    if (ms < 10) return `${ms.toFixed(1)} ms`;
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 10e3) return `${(ms / 1000).toFixed(2)} s`;
    if (ms < 60e3) return `${(ms / 1000).toFixed(1)} s`;
    return `${(ms / 60e3).toFixed(1)} min`;
  }

  function fmtUsd(v) {
    if (!isNum(v)) return '—';
    if (v === 0) return '$0';
    const a = Math.abs(v);
    if (a >= 1000) return `$${Math.round(v).toLocaleString('en-US')}`;
    if (a >= 1) return `$${v.toFixed(2)}`;
    if (a >= 0.01) return `$${v.toFixed(4).replace(/0+$/, '').replace(/\.$/, '')}`;
    // Small amounts keep three significant digits: $0.000123.
    return `$${Number(v.toPrecision(3)).toFixed(Math.max(0, 2 - Math.floor(Math.log10(a))))}`;
  }

  function fmtCount(n) {
    if (!isNum(n)) return '—';
    if (Math.abs(n) < 10000) return Math.round(n).toLocaleString('en-US');
    const units = [[1e9, 'B'], [1e6, 'M'], [1e3, 'k']];
    for (const [d, u] of units) {
      if (Math.abs(n) >= d) return `${(n / d).toFixed(n / d >= 100 ? 0 : 1)}${u}`;
    }
    return String(n);
  }

  function fmtPct(x) {
    if (!isNum(x)) return '—';
    if (x === 0) return '0%';
    if (x < 0.001) return '<0.1%';
    return `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}%`;
  }

  const pad2 = (n) => String(n).padStart(2, '0');
  function fmtTime(ms) {
    const d = new Date(ms);
    const now = new Date();
    const hms = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
    if (d.toDateString() === now.toDateString()) return hms;
    return `${d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' })} ${hms}`;
  }

  function fmtAxisTime(ms, spanMs) {
    const d = new Date(ms);
    if (spanMs > 2 * 86400e3) return d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
    return `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  }

  function fmtBound(ms) {
    if (ms >= 1000) return `${ms / 1000}s`;
    return `${ms}ms`;
  }

  // ---------------------------------------------------------------------------------------
  // DOM helpers. Text always goes through textContent: nothing from the API becomes markup.

  function el(tag, attrs = {}, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  function svg(tag, attrs = {}, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function tip(node, text) {
    node.append(svg('title', {}, text));
    return node;
  }

  function emptyState(title, detail) {
    return el('div', { class: 'empty' }, el('strong', { text: title }), el('span', { text: detail }));
  }

  function windowWords() {
    return { '1h': 'the last hour', '24h': 'the last 24 hours', '7d': 'the last 7 days' }[state.window];
  }

  // ---------------------------------------------------------------------------------------
  // Fetching.

  async function getJson(url) {
    const res = await fetch(url, { headers: { accept: 'application/json' }, cache: 'no-store' });
    if (res.status === 401) {
      const e = new Error('log in with the master key');
      e.needsLogin = true;
      throw e;
    }
    if (!res.ok) {
      let detail = '';
      try { detail = (await res.text()).slice(0, 200); } catch { /* body unreadable */ }
      throw new Error(`${url.split('?')[0]} answered ${res.status}${detail ? `: ${detail}` : ''}`);
    }
    try {
      return await res.json();
    } catch {
      throw new Error(`${url.split('?')[0]} did not answer JSON`);
    }
  }

  function showBanner(message) {
    const b = document.getElementById('banner');
    if (message) {
      b.textContent = message;
      b.hidden = false;
    } else {
      b.hidden = true;
      b.textContent = '';
    }
  }

  async function refresh() {
    if (state.inFlight) return;
    state.inFlight = true;
    const since = Date.now() - WINDOWS[state.window];
    const key = state.key ? `&key=${encodeURIComponent(state.key)}` : '';
    try {
      const [usage, requests, local, finetune] = await Promise.all([
        getJson(`/api/usage?since=${since}${key}`),
        getJson(`/api/requests?limit=50${key}`),
        getJson('/api/local'),
        getJson('/api/finetune'),
      ]);
      document.getElementById('login').hidden = true;
      state.usage = usage;
      state.requests = requests;
      state.local = local;
      state.finetune = finetune;
      render();
      showBanner('');
      document.getElementById('updated').textContent = `updated ${fmtTime(Date.now())}`;
      document.documentElement.dataset.loaded = 'true';
    } catch (e) {
      if (e.needsLogin) {
        document.getElementById('login').hidden = false;
        showBanner('');
        document.getElementById('updated').textContent = 'not logged in';
        return;
      }
      const why = e instanceof TypeError ? 'the gateway could not be reached' : e.message;
      showBanner(`Could not refresh the dashboard (${why}). Retrying every ${POLL_MS / 1000} s; ` +
                 'the figures below may be stale.');
      document.getElementById('updated').textContent = 'refresh failed';
    } finally {
      state.inFlight = false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Rendering.

  function render() {
    const u = state.usage || {};
    renderKpis(u.totals || {});
    renderRate(u.rate || [], u.since, u.until);
    renderHistogram('chart-latency', 'note-latency', u.latency_histogram, (u.totals || {}).latency_ms);
    renderHistogram('chart-ttft', 'note-ttft', u.ttft_histogram, (u.totals || {}).ttft_ms);
    renderErrors(u.errors_by_class || []);
    renderSpendBars('bars-model', u.by_model || []);
    renderSpendBars('bars-provider', u.by_provider || []);
    renderSpendBars('bars-key', (u.by_key || []).map((g) => ({ ...g, key: g.label ? `${g.label} (${g.key})` : g.key })));
    renderKeyFilter(u.by_key || []);
    renderDays(u.by_day || []);
    renderTable((state.requests || {}).requests || []);
    renderLocal(state.local || {});
    renderFinetune(((state.finetune || {}).data || [])[0]);
  }

  // The newest fine-tuning job the server ran (POST /admin/finetune): where it is and its loss
  // curve, the training loss per step and the eval loss where it was measured.
  const setFinetune = (...args) => setTile('finetune', ...args);

  function renderFinetune(job) {
    const panel = document.getElementById('finetune');
    panel.hidden = !job;
    if (!job) return;
    document.getElementById('finetune-name').textContent = job.name || '';
    const failed = job.status === 'failed';
    setFinetune('status', job.status, failed ? job.error || '' : job.message || '', failed);
    const total = job.total_steps || 0;
    setFinetune('step', total ? `${fmtCount(job.step)} / ${fmtCount(total)}` : fmtCount(job.step),
                job.status === 'training' && job.eta_seconds > 0
                  ? `about ${fmtMs(job.eta_seconds * 1000)} left` : `epoch ${job.epoch || 0}`);
    document.getElementById('finetune-fill').style.width =
      `${total ? Math.min(100, (100 * (job.step || 0)) / total) : 0}%`;
    setFinetune('loss', isNum(job.loss) ? job.loss.toFixed(3) : (job.step ? 'not a number' : '—'),
                isNum(job.eval_loss) ? `eval ${job.eval_loss.toFixed(3)}` : 'no eval loss yet');
    setFinetune('speed', job.tokens_per_second > 0 ? `${job.tokens_per_second.toFixed(0)} tok/s` : '—',
                `${fmtCount(job.examples)} conversations${job.skipped_lines ? `, ${fmtCount(job.skipped_lines)} lines skipped` : ''}`);
    renderLoss((job.points || []).filter((p) => isNum(p.loss)));
  }

  function renderLoss(points) {
    const host = document.getElementById('chart-loss');
    const note = document.getElementById('finetune-note');
    host.replaceChildren();
    if (!points.length) {
      note.textContent = '';
      host.append(emptyState('No steps yet', 'The loss of each step appears here as the job trains.'));
      return;
    }
    const W = chartWidth(host);
    const H = 190;
    const m = { l: 40, r: 10, t: 8, b: 20 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const losses = points.flatMap((p) => (isNum(p.eval_loss) ? [p.loss, p.eval_loss] : [p.loss])).filter(isNum);
    const top = niceMax(Math.max(...losses));
    const first = points[0].step;
    const last = points[points.length - 1].step;
    const x = (step) => m.l + (last > first ? ((step - first) / (last - first)) * iw : iw / 2);
    const y = (v) => m.t + ih - (Math.max(0, v) / top) * ih;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img',
                           'aria-label': 'Training and eval loss by step' });
    for (const f of [0, 0.5, 1]) {
      const yy = m.t + ih - f * ih;
      s.append(svg('line', { class: f === 0 ? 'axis' : 'gridline', x1: m.l, x2: W - m.r, y1: yy, y2: yy }));
      s.append(svg('text', { x: m.l - 6, y: yy + 3.5, 'text-anchor': 'end' }, (top * f).toFixed(top * f < 10 ? 1 : 0)));
    }
    const path = points.map((p, i) => `${i ? 'L' : 'M'}${x(p.step).toFixed(1)},${y(p.loss).toFixed(1)}`).join('');
    s.append(tip(svg('path', { class: 'loss-line', d: path }),
                 `loss ${points[points.length - 1].loss.toFixed(3)} at step ${last}`));
    const evals = points.filter((p) => isNum(p.eval_loss));
    if (evals.length > 1) {
      s.append(svg('path', { class: 'eval-line',
                             d: evals.map((p, i) => `${i ? 'L' : 'M'}${x(p.step).toFixed(1)},${y(p.eval_loss).toFixed(1)}`).join('') }));
    }
    for (const p of evals) {
      s.append(tip(svg('circle', { class: 'eval-dot', cx: x(p.step), cy: y(p.eval_loss), r: 3 }),
                   `eval loss ${p.eval_loss.toFixed(3)} at step ${p.step}`));
    }
    s.append(svg('text', { x: m.l, y: H - 5, 'text-anchor': 'start' }, `step ${first}`));
    s.append(svg('text', { x: W - m.r, y: H - 5, 'text-anchor': 'end' }, `step ${last}`));
    host.append(s);
    note.textContent = `${points.length} points`;
  }

  // The local model's live counters (/api/local): what runs now and how well the caches work.
  const setLocal = (...args) => setTile('local', ...args);

  function renderLocal(l) {
    const panel = document.getElementById('local');
    panel.hidden = !l.enabled;
    if (!l.enabled) return;
    document.getElementById('local-model').textContent = l.model || '';
    document.getElementById('local-note').textContent =
      `${fmtCount(l.completed)} answered · ${fmtCount(l.output_tokens)} tokens out · since start`;
    const full = (l.running || 0) >= (l.max_batch || 1) && (l.queued || 0) > 0;
    setLocal('sequences', `${fmtCount(l.running)} / ${fmtCount(l.queued)}`,
             `up to ${l.max_batch} at once, ${l.max_queue} waiting`, full);
    setLocal('speed', isNum(l.decode_tokens_per_s) && l.decode_tokens_per_s > 0
      ? `${l.decode_tokens_per_s.toFixed(1)} tok/s` : '—', 'last answer');
    // A step is the gap between two tokens of every answer in it (1001: over a second).
    const ms = (v) => (v > 1000 ? '> 1 s' : `${fmtCount(v)} ms`);
    const st = l.step_ms;
    setLocal('step', st ? ms(st.p50) : '—',
             st ? `p99 ${ms(st.p99)} · the gap between tokens` : 'no steps yet', !!st && st.p99 > 1000);
    const total = l.kv_blocks_total || 0;
    const used = l.kv_blocks_in_use || 0;
    const share = total ? used / total : 0;
    const mib = (blocks) => `${fmtCount((blocks * (l.kv_block_bytes || 0)) / 1048576)} MiB`;
    setLocal('kv', total ? fmtPct(share) : fmtCount(used),
             total ? `${mib(used)} of ${mib(total)}` : `${fmtCount(used)} blocks`, share > 0.9);
    document.getElementById('local-kv-fill').style.width = `${Math.min(100, share * 100)}%`;
    setLocal('prefix', fmtCount(l.prefix_hit_tokens), 'shared prefixes, not recomputed');
    const lookups = (l.image_cache_hits || 0) + (l.image_cache_misses || 0);
    setLocal('images', lookups ? fmtPct((l.image_cache_hits || 0) / lookups) : '—',
             lookups ? `${fmtCount(l.image_cache_hits)} hits, ${fmtCount(l.image_cache_misses)} misses`
                     : 'no images yet');
    renderBatches(l.steps_by_sequences || [], l.max_batch || 1, l.steps || 0);
  }

  // Batched steps by how many sequences they carried: the closer to max_batch, the better the
  // weights are shared.
  function renderBatches(list, maxBatch, steps) {
    const host = document.getElementById('chart-batch');
    const note = document.getElementById('local-batch-note');
    host.replaceChildren();
    const total = list.reduce((a, b) => a + (b.steps || 0), 0);
    if (!total) {
      note.textContent = '';
      host.append(emptyState('No steps yet', 'Each batched step of the local model is counted here.'));
      return;
    }
    const mean = list.reduce((a, b) => a + b.sequences * b.steps, 0) / total;
    note.textContent = `${fmtCount(steps)} steps · ${mean.toFixed(1)} sequences per step on average`;
    const n = Math.max(maxBatch, ...list.map((b) => b.sequences));
    const counts = new Array(n).fill(0);
    for (const b of list) counts[b.sequences - 1] += b.steps;
    const W = chartWidth(host);
    const H = 150;
    const m = { l: 34, r: 8, t: 8, b: 20 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const top = niceMax(Math.max(...counts));
    const step = iw / n;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': 'Sequences per step' });
    countAxis(s, m, W, ih, top);
    const every = Math.ceil(n / 16);
    counts.forEach((c, i) => {
      const h = (c / top) * ih;
      if (h > 0) {
        s.append(tip(svg('rect', { class: 'bar-hist', x: m.l + i * step + 1, y: m.t + ih - h,
                                   width: Math.max(1, step - 2), height: h, rx: 1.5 }),
                     `${i + 1} sequence${i ? 's' : ''}: ${c} step${c === 1 ? '' : 's'}`));
      }
      if (i % every === 0 || i === n - 1) {
        s.append(svg('text', { x: m.l + (i + 0.5) * step, y: H - 5, 'text-anchor': 'middle' }, String(i + 1)));
      }
    });
    host.append(s);
  }

  // The key filter lists the keys that made requests in the window (and the chosen one).
  function renderKeyFilter(groups) {
    const select = document.getElementById('key-filter');
    const keys = groups.filter((g) => g.key !== '(none)').map((g) => [g.key, g.label || g.key]);
    if (state.key && !keys.some(([id]) => id === state.key)) keys.push([state.key, state.key]);
    const signature = JSON.stringify(keys);
    if (select.dataset.signature === signature) return;
    select.dataset.signature = signature;
    select.replaceChildren(el('option', { value: '', text: 'all keys' }),
      ...keys.map(([id, label]) => el('option', { value: id, text: label })));
    select.value = state.key;
  }

  // A tile is [data-kpi=name] (the totals) or [data-local=name] (the local model's panel).
  function setTile(kind, name, value, hint, bad = false) {
    const tile = document.querySelector(`[data-${kind}="${name}"]`);
    tile.querySelector('.value').textContent = value;
    tile.querySelector('.hint').textContent = hint || '';
    tile.classList.toggle('bad', bad);
  }
  const setKpi = (...args) => setTile('kpi', ...args);

  function renderKpis(t) {
    const n = t.requests || 0;
    const errors = t.errors || 0;
    const rate = n ? errors / n : null;
    setKpi('requests', fmtCount(n), `in ${windowWords()}`);
    setKpi('error_rate', n ? fmtPct(rate) : '—', n ? `${fmtCount(errors)} failed` : 'no requests', rate > 0.05);
    const tokens = (t.input_tokens || 0) + (t.output_tokens || 0);
    setKpi('spend', fmtUsd(t.cost_usd || 0), tokens ? `${fmtCount(tokens)} tokens` : 'no tokens yet');
    const lat = t.latency_ms || {};
    const ttft = t.ttft_ms || {};
    setKpi('latency_p50', fmtMs(lat.p50), isNum(lat.p90) ? `p90 ${fmtMs(lat.p90)}` : '');
    setKpi('latency_p99', fmtMs(lat.p99), '');
    setKpi('ttft_p50', fmtMs(ttft.p50), isNum(ttft.p99) ? `p99 ${fmtMs(ttft.p99)}` : '');
  }

  function chartWidth(host) {
    return Math.max(240, Math.floor(host.clientWidth || host.getBoundingClientRect().width || 600));
  }

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  // The count axis of a bar chart: baseline, half and top gridlines with their labels.
  function countAxis(s, m, W, ih, top) {
    for (const f of [0, 0.5, 1]) {
      const y = m.t + ih - f * ih;
      s.append(svg('line', { class: f === 0 ? 'axis' : 'gridline', x1: m.l, x2: W - m.r, y1: y, y2: y }));
      s.append(svg('text', { x: m.l - 6, y: y + 3.5, 'text-anchor': 'end' }, fmtCount(top * f)));
    }
  }

  function renderRate(rate, since, until) {
    const host = document.getElementById('chart-rate');
    host.replaceChildren();
    const total = rate.reduce((s, r) => s + (r.requests || 0), 0);
    if (!rate.length || total === 0) {
      host.append(emptyState(`No requests in ${windowWords()}`,
                             'Requests through the gateway appear here within 5 seconds.'));
      return;
    }
    const W = chartWidth(host);
    const H = 170;
    const m = { l: 34, r: 8, t: 8, b: 20 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const top = niceMax(Math.max(...rate.map((r) => r.requests || 0)));
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img',
                           'aria-label': 'Requests and errors over time' });
    countAxis(s, m, W, ih, top);
    const step = iw / rate.length;
    const bw = Math.max(1, step * 0.78);
    rate.forEach((r, i) => {
      const x = m.l + i * step + (step - bw) / 2;
      const hr = ((r.requests || 0) / top) * ih;
      const he = ((r.errors || 0) / top) * ih;
      const label = `${fmtTime(r.t)}: ${r.requests || 0} requests, ${r.errors || 0} errors`;
      if (hr > 0) s.append(tip(svg('rect', { class: 'bar-req', x, y: m.t + ih - hr, width: bw, height: hr, rx: 1 }), label));
      if (he > 0) s.append(tip(svg('rect', { class: 'bar-err', x, y: m.t + ih - he, width: bw, height: he, rx: 1 }), label));
    });
    const t0 = isNum(since) ? since : rate[0].t;
    const t1 = isNum(until) ? until : rate[rate.length - 1].t;
    const ticks = Math.min(6, rate.length);
    for (let k = 0; k < ticks; ++k) {
      const i = Math.round((k * (rate.length - 1)) / Math.max(1, ticks - 1));
      const x = m.l + i * step + step / 2;
      const anchor = k === 0 ? 'start' : k === ticks - 1 ? 'end' : 'middle';
      s.append(svg('text', { x: k === 0 ? m.l : k === ticks - 1 ? W - m.r : x, y: H - 5, 'text-anchor': anchor },
                   fmtAxisTime(rate[i].t, t1 - t0)));
    }
    host.append(s);
  }

  // Where a value falls on a bucketed axis of equal-width bars: inside its bucket, linearly.
  function bucketX(value, bounds, x0, step) {
    let i = bounds.findIndex((b) => value <= b);
    if (i < 0) i = bounds.length;
    const lo = i === 0 ? 0 : bounds[i - 1];
    const hi = i < bounds.length ? bounds[i] : lo * 2;
    const f = hi > lo ? Math.min(1, Math.max(0, (value - lo) / (hi - lo))) : 0.5;
    return x0 + (i + f) * step;
  }

  function renderHistogram(hostId, noteId, hist, pct) {
    const host = document.getElementById(hostId);
    const note = document.getElementById(noteId);
    host.replaceChildren();
    const bounds = (hist && hist.bounds_ms) || [];
    const counts = (hist && hist.counts) || [];
    const total = counts.reduce((a, b) => a + b, 0);
    pct = pct || {};
    note.textContent = isNum(pct.p50)
      ? `p50 ${fmtMs(pct.p50)} · p90 ${fmtMs(pct.p90)} · p99 ${fmtMs(pct.p99)}` : '';
    if (!bounds.length || total === 0) {
      host.append(emptyState('No timings yet', hostId === 'chart-ttft'
        ? 'Time to first token is measured on every answered request.'
        : `Latency of requests in ${windowWords()} appears here.`));
      return;
    }
    const W = chartWidth(host);
    const H = 170;
    const m = { l: 34, r: 8, t: 16, b: 20 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const n = bounds.length + 1;
    const top = niceMax(Math.max(...counts));
    const step = iw / n;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': 'Histogram' });
    countAxis(s, m, W, ih, top);
    counts.forEach((c, i) => {
      const h = (c / top) * ih;
      const lo = i === 0 ? 0 : bounds[i - 1];
      const range = i < bounds.length ? `${fmtBound(lo)}–${fmtBound(bounds[i])}` : `> ${fmtBound(lo)}`;
      if (h > 0) {
        s.append(tip(svg('rect', { class: 'bar-hist', x: m.l + i * step + 1, y: m.t + ih - h,
                                   width: Math.max(1, step - 2), height: h, rx: 1.5 }),
                     `${range}: ${c} request${c === 1 ? '' : 's'}`));
      }
      // Label every other bucket edge when space is short.
      if (i < bounds.length && (step > 34 || i % 2 === 1)) {
        s.append(svg('text', { x: m.l + (i + 1) * step, y: H - 5, 'text-anchor': 'middle' }, fmtBound(bounds[i])));
      }
    });
    const marks = [['p50', pct.p50], ['p90', pct.p90], ['p99', pct.p99]].filter(([, v]) => isNum(v));
    let lastX = -Infinity;
    for (const [name, v] of marks) {
      const x = bucketX(v, bounds, m.l, step);
      s.append(tip(svg('line', { class: `pmark ${name}`, x1: x, x2: x, y1: m.t - 2, y2: m.t + ih }),
                   `${name} ${fmtMs(v)}`));
      // Keep the labels from sitting on top of each other.
      const lx = Math.max(x, lastX + 24);
      s.append(svg('text', { class: `plabel ${name}`, x: lx, y: m.t - 5, 'text-anchor': 'middle' }, name));
      lastX = lx;
    }
    host.append(s);
  }

  function hbars(hostId, items, { amount, error = false, empty }) {
    const host = document.getElementById(hostId);
    host.replaceChildren();
    if (!items.length) {
      host.append(emptyState(empty[0], empty[1]));
      return;
    }
    const max = Math.max(...items.map((i) => i.value), 0) || 1;
    for (const it of items.slice(0, 8)) {
      const row = el('div', { class: `hbar${error ? ' error' : ''}`, title: `${it.key}: ${amount(it)}` },
        el('span', { class: 'name', text: it.key || '(none)' }),
        el('span', { class: 'amount', text: amount(it) }),
        el('div', { class: 'track' }, el('div', { class: 'fill', style: `width:${(100 * it.value) / max}%` })));
      host.append(row);
    }
    if (items.length > 8) host.append(el('div', { class: 'dim', text: `and ${items.length - 8} more` }));
  }

  function renderErrors(list) {
    const items = list.filter((e) => (e.count || 0) > 0).map((e) => ({ key: e.key, value: e.count }))
      .sort((a, b) => b.value - a.value);
    hbars('bars-errors', items, {
      error: true,
      amount: (i) => fmtCount(i.value),
      empty: ['No errors', `Nothing failed in ${windowWords()}.`],
    });
  }

  function renderSpendBars(hostId, list) {
    const items = list.map((g) => ({ key: g.key, value: g.cost_usd || 0, requests: g.requests || 0 }))
      .filter((i) => i.requests > 0)
      .sort((a, b) => b.value - a.value || b.requests - a.requests);
    hbars(hostId, items, {
      amount: (i) => `${fmtUsd(i.value)} · ${fmtCount(i.requests)} req`,
      empty: ['No spend yet', `No priced requests in ${windowWords()}.`],
    });
  }

  function renderDays(days) {
    const host = document.getElementById('chart-day');
    host.replaceChildren();
    const list = days.filter((d) => (d.requests || 0) > 0);
    if (!list.length) {
      host.append(emptyState('No spend yet', `No requests in ${windowWords()}.`));
      return;
    }
    const W = chartWidth(host);
    const H = 170;
    const m = { l: 44, r: 6, t: 8, b: 20 };
    const iw = W - m.l - m.r;
    const ih = H - m.t - m.b;
    const top = Math.max(...list.map((d) => d.cost_usd || 0));
    const scaleTop = top > 0 ? top * 1.1 : 1;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, height: H, role: 'img', 'aria-label': 'Spend by day' });
    s.append(svg('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih }));
    s.append(svg('text', { x: m.l - 6, y: m.t + 8, 'text-anchor': 'end' }, fmtUsd(top)));
    const step = iw / Math.max(list.length, 1);
    const bw = Math.min(42, step * 0.7);
    list.forEach((d, i) => {
      const h = Math.max(1, ((d.cost_usd || 0) / scaleTop) * ih);
      const x = m.l + i * step + (step - bw) / 2;
      s.append(tip(svg('rect', { class: 'bar-day', x, y: m.t + ih - h, width: bw, height: h, rx: 2 }),
                   `${d.key}: ${fmtUsd(d.cost_usd || 0)}, ${d.requests} requests`));
      if (list.length <= 8 || i % Math.ceil(list.length / 8) === 0) {
        s.append(svg('text', { x: x + bw / 2, y: H - 5, 'text-anchor': 'middle' }, String(d.key).slice(5)));
      }
    });
    host.append(s);
  }

  function statusBadge(code) {
    const cls = code >= 200 && code < 300 ? 'ok' : code === 499 || code === 429 ? 'warn' : 'err';
    return el('span', { class: `badge ${cls}`, text: code ? String(code) : '—' });
  }

  function tokensText(u) {
    if (!u) return '—';
    const i = u.input_tokens || 0;
    const o = u.output_tokens || 0;
    if (!i && !o) return '—';
    return `${fmtCount(i)} → ${fmtCount(o)}`;
  }

  function attemptsRow(r) {
    const att = r.attempts || [];
    const head = el('tr', {}, ...['#', 'Provider / model', 'Outcome', 'Status', 'Latency', 'TTFT', 'Error']
      .map((h) => el('th', { text: h, class: h === 'Latency' || h === 'TTFT' ? 'num' : null })));
    const body = att.map((a, i) => el('tr', { class: 'attempt' },
      el('td', { text: String(a.n || i + 1) }),
      el('td', { class: 'model', text: `${a.provider}/${a.model}` }),
      el('td', {}, el('span', { class: `badge ${a.outcome === 'ok' ? 'ok' : a.outcome === 'skipped' ? 'warn' : 'err'}`, text: a.outcome })),
      el('td', { text: a.status ? String(a.status) : '—' }),
      el('td', { class: 'num', text: fmtMs(a.latency_ms) }),
      el('td', { class: 'num', text: fmtMs(a.ttft_ms) }),
      el('td', { class: 'err-text', text: a.error ? `${a.error_class ? `[${a.error_class}] ` : ''}${a.error}` : '' })));
    const meta = el('div', { class: 'att-meta' },
      'request ', el('code', { text: r.request_id }),
      ` · asked for `, el('code', { text: r.requested_model || '—' }),
      ` · ${r.dialect || ''}${r.stream ? ' · stream' : ''} · overhead ${fmtMs(r.overhead_ms)}` +
      ` · ${fmtCount(r.bytes_in || 0)} B in / ${fmtCount(r.bytes_out || 0)} B out`);
    // A row summing requests the log dropped under load says so, in place of attempts.
    const summed = (r.request_id || '').startsWith('req_sum_');
    const inner = att.length
      ? el('table', { class: 'att' }, el('thead', {}, head), el('tbody', {}, ...body))
      : el('div', { class: 'dim', text: summed ? r.error : 'No attempt was made (the request failed before routing).' });
    if (r.error && !summed) meta.append(el('div', { class: 'err-text', text: `error: ${r.error}` }));
    return el('tr', { class: 'attempts', 'data-attempts-for': r.request_id }, el('td', { colspan: 10 }, meta, inner));
  }

  function renderTable(rows) {
    const tbody = document.querySelector('#requests tbody');
    tbody.replaceChildren();
    if (!rows.length) {
      tbody.append(el('tr', {}, el('td', { colspan: 10, class: 'empty-row' },
        emptyState('No requests yet', 'Send one to /v1/chat/completions or /v1/messages and it is listed here.'))));
      return;
    }
    for (const r of rows) {
      const open = state.expanded.has(r.request_id);
      const provModel = r.provider ? `${r.provider}/${r.model}` : '—';
      const tr = el('tr', { class: 'req', tabindex: 0, 'data-request-id': r.request_id, 'aria-expanded': open ? 'true' : 'false' },
        el('td', { class: 'c-exp' }, el('span', { class: 'caret', text: '▸' })),
        el('td', { title: new Date(r.start_unix_ms).toISOString(), text: fmtTime(r.start_unix_ms) }),
        el('td', { text: r.caller_key || '—', class: r.caller_key ? 'key' : 'dim' }),
        el('td', { text: r.route || '—', class: r.route ? '' : 'dim' }),
        el('td', { class: 'model', title: `asked for ${r.requested_model}`, text: provModel }),
        el('td', {}, statusBadge(r.http_status), r.error_class ? el('span', { class: 'eclass', text: r.error_class }) : null),
        el('td', { class: 'num', text: fmtMs(r.latency_ms) }),
        el('td', { class: 'num', text: fmtMs(r.ttft_ms) }),
        el('td', { class: 'num', text: tokensText(r.usage) }),
        el('td', { class: 'num', text: fmtUsd(r.cost_usd) }));
      const toggle = () => {
        if (state.expanded.has(r.request_id)) state.expanded.delete(r.request_id);
        else state.expanded.add(r.request_id);
        renderTable(rows);
      };
      tr.addEventListener('click', toggle);
      tr.addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); toggle(); }
      });
      tbody.append(tr);
      if (open) tbody.append(attemptsRow(r));
    }
  }

  // ---------------------------------------------------------------------------------------
  // Controls.

  function selectWindow(w) {
    state.window = w;
    for (const b of document.querySelectorAll('[data-window]')) {
      b.setAttribute('aria-pressed', b.dataset.window === w ? 'true' : 'false');
    }
    if (location.hash !== `#${w}`) history.replaceState(null, '', `#${w}`);
  }

  function start() {
    for (const b of document.querySelectorAll('[data-window]')) {
      b.addEventListener('click', () => { selectWindow(b.dataset.window); refresh(); });
    }
    selectWindow(state.window);
    document.getElementById('key-filter').addEventListener('change', (e) => {
      state.key = e.target.value;
      refresh();
    });
    document.getElementById('login-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      const note = document.getElementById('login-note');
      const input = document.getElementById('master-key');
      try {
        const res = await fetch('/admin/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ master_key: input.value }),
        });
        if (!res.ok) {
          note.textContent = 'that is not the master key';
          return;
        }
        input.value = '';
        note.textContent = '';
        refresh();
      } catch {
        note.textContent = 'the gateway could not be reached';
      }
    });
    let resizeTimer = null;
    window.addEventListener('resize', () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => { if (state.usage) render(); }, 150);
    });
    refresh();
    state.timer = setInterval(refresh, POLL_MS);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
