// Sluice operations console: one ES module, no framework, no build step, no CDN.
// Everything it shows comes from the pipeline's JSON API (/api/*); every text goes into the page
// as textContent, never as HTML.

const TOKEN_KEY = 'sluice.token';
const REFRESH_MS = 2000;
const COLORS = ['#1f6feb', '#cf222e', '#1a7f37', '#9a6700', '#8250df', '#bf3989', '#0a7ea4', '#57606a'];

const $ = (sel) => document.querySelector(sel);

/** An element with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  return el;
}
const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

const fmt = (n) => (typeof n === 'number' && Number.isFinite(n) ? (Number.isInteger(n) ? n.toLocaleString('en-US') : n.toLocaleString('en-US', { maximumFractionDigits: 2 })) : n === null || n === undefined ? '–' : String(n));
const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + (typeof b === 'number' ? b : 0), 0);
const badge = (state) => h('span', { class: `badge ${String(state ?? '').replace(/[^a-z]/gi, '')}`, text: state ?? 'unknown' });
const errText = (e) => (e ? (typeof e === 'string' ? e : `${e.code ? `[${e.code}] ` : ''}${e.message ?? JSON.stringify(e)}`) : '');
function fill(tbody, rows, empty, cols) {
  tbody.replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: cols, class: 'hint', text: empty }))]));
}

// ---------- API ----------

class Unauthorized extends Error {}

async function api(path, init = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { accept: 'application/json', ...(init.headers ?? {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { ...init, headers, credentials: 'omit', cache: 'no-store' });
  if (res.status === 401) {
    showLogin(token ? 'that token was refused' : '');
    throw new Unauthorized('unauthorized');
  }
  const body = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body;
}

// ---------- login ----------

function showLogin(message) {
  $('#login').hidden = false;
  $('#main').hidden = true;
  $('#login-error').textContent = message ?? '';
  $('#token-input').focus();
}

$('#login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('#token-input').value.trim());
  $('#token-input').value = '';
  $('#login').hidden = true;
  $('#main').hidden = false;
  start();
});

// ---------- tabs ----------

const PAGES = ['overview', 'topics', 'sinks', 'processors', 'reconcile', 'dlq', 'graph'];
let page = 'overview';

function select(name) {
  if (!PAGES.includes(name)) name = 'overview';
  page = name;
  for (const p of PAGES) {
    $(`#tab-${p}`).setAttribute('aria-selected', String(p === name));
    $(`#page-${p}`).hidden = p !== name;
  }
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  refreshPage().catch(report);
}
for (const p of PAGES) $(`#tab-${p}`).addEventListener('click', () => select(p));
addEventListener('hashchange', () => select(location.hash.slice(1)));

function report(e) {
  if (e instanceof Unauthorized) return;
  const b = $('#banner');
  b.hidden = false;
  b.textContent = `could not load: ${e.message}`;
}
function clearBanner() {
  $('#banner').hidden = true;
}

// ---------- state ----------

let info = null;
let status = null;
let topics = null;

// ---------- overview ----------

function renderHeader() {
  $('#pipeline-name').textContent = status?.pipeline ?? info?.pipeline ?? '';
  const st = $('#pipeline-state');
  st.textContent = status?.state ?? 'unknown';
  st.className = `badge ${String(status?.state ?? '').replace(/[^a-z]/gi, '')}`;
  $('#mode').textContent = info ? (info.mode === 'ui' ? '· sluice ui (read-only view of the log)' : '· live') : '';
  $('#updated').textContent = status?.updatedAt ? `· status of ${new Date(status.updatedAt).toLocaleTimeString()}` : '';
  document.title = `Sluice ${status?.pipeline ?? ''}`;
}

function dlqTopic() {
  return topics?.topics.find((t) => t.role === 'dead letters');
}

function renderOverview() {
  const src = status?.source;
  const procs = status?.processors ?? [];
  const sinks = status?.sinks ?? [];
  const card = (id, label, value) => h('div', {}, h('dt', { text: label }), h('dd', { id, 'data-value': typeof value === 'number' ? value : undefined, text: fmt(value) }));
  $('#overview-cards').replaceChildren(
    card('ov-state', 'State', status?.state ?? 'unknown'),
    card('ov-source', 'Source', src ? src.type : 'none'),
    card('ov-events', 'Events written', src?.eventsWritten ?? null),
    card('ov-processed', 'Processed', procs.reduce((a, p) => a + (p.processed ?? 0), 0)),
    card('ov-applied', 'Applied by sinks', sinks.reduce((a, x) => a + (x.applied ?? 0), 0)),
    card('ov-lag', 'Sink lag (offsets)', sinks.reduce((a, x) => a + sum(x.partitionLag), 0)),
    card('ov-dlq', 'Dead letters', dlqTopic()?.records ?? 0),
  );
  const kv = [];
  if (src) {
    for (const [k, v] of Object.entries(src)) {
      if (k === 'snapshot' || v === null || v === undefined || typeof v === 'object') continue;
      kv.push(h('dt', { text: k }), h('dd', { class: 'mono', 'data-key': k, text: fmt(v) }));
    }
    if (src.error) kv.push(h('dt', { text: 'error' }), h('dd', { class: 'error', text: errText(src.error) }));
  } else kv.push(h('dt', { text: 'source' }), h('dd', { text: status?.message ?? 'none configured (or not running here)' }));
  $('#source-details').replaceChildren(...kv);
  const snap = src?.snapshot;
  if (snap && typeof snap === 'object') {
    const rows = Object.entries(snap).map(([k, v]) => h('tr', {}, h('th', { scope: 'row', text: k }), h('td', { class: 'mono', text: typeof v === 'object' ? JSON.stringify(v) : fmt(v) })));
    const pct = typeof snap.tablesDone === 'number' && typeof snap.tables === 'number' && snap.tables ? Math.round((100 * snap.tablesDone) / snap.tables) : null;
    $('#snapshot').replaceChildren(...(pct !== null ? [h('p', {}, h('progress', { max: 100, value: pct, 'aria-label': 'snapshot progress' }), ` ${pct} % of tables`)] : []), h('table', {}, h('tbody', {}, rows)));
  } else $('#snapshot').replaceChildren(h('p', { text: 'no snapshot running' }));
}

// ---------- topics ----------

function renderTopics() {
  const rows = (topics?.topics ?? []).map((t) =>
    h('tr', { 'data-topic': t.name },
      h('td', { class: 'mono', text: t.name }),
      h('td', { text: t.role }),
      h('td', { class: 'num', text: t.partitions.length }),
      h('td', { class: 'num', 'data-col': 'records', text: fmt(t.records) }),
      h('td', { class: 'num', 'data-col': 'end', text: fmt(t.end) }),
      h('td', { class: 'num', 'data-col': 'rate', text: t.rate === null ? '–' : fmt(Math.round(t.rate * 10) / 10) }),
    ),
  );
  fill($('#topics-table tbody'), rows, 'no topics yet', 6);
}

// ---------- sinks and the lag chart ----------

function renderSinks() {
  const rows = (status?.sinks ?? []).map((x) =>
    h('tr', { 'data-sink': x.name },
      h('td', { text: x.name }),
      h('td', { text: x.type }),
      h('td', {}, badge(x.state), x.error ? h('div', { class: 'error', text: errText(x.error) }) : null),
      h('td', { class: 'num', 'data-col': 'applied', text: fmt(x.applied) }),
      h('td', { class: 'num', 'data-col': 'lag', text: fmt(sum(x.partitionLag)) }),
      h('td', { class: 'num', 'data-col': 'lagMs', text: fmt(x.lagMs) }),
      h('td', { class: 'num', 'data-col': 'deadLettered', text: fmt(x.deadLettered ?? 0) }),
      h('td', { class: 'mono wrap', 'data-col': 'offsets', text: Object.entries(x.offsets ?? {}).map(([k, v]) => `${k}@${v}`).join(' ') || '–' }),
    ),
  );
  fill($('#sinks-table tbody'), rows, 'no sinks', 8);
}

function renderLag(lag) {
  const svg = $('#lag-chart');
  const W = 800, H = 240, L = 56, R = 10, T = 10, B = 22;
  const names = lag.sinks ?? [];
  const now = Date.now();
  const span = 10 * 60 * 1000;
  const samples = (lag.samples ?? []).filter((x) => x.t >= now - span);
  const max = Math.max(1, ...samples.flatMap((x) => Object.values(x.sinks).map((v) => v.offsets)));
  const xOf = (t) => L + ((t - (now - span)) / span) * (W - L - R);
  const yOf = (v) => T + (1 - v / max) * (H - T - B);
  const parts = [
    s('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }),
    s('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }),
    s('text', { x: L - 6, y: T + 10, 'text-anchor': 'end' }, fmt(max)),
    s('text', { x: L - 6, y: H - B, 'text-anchor': 'end' }, '0'),
    s('text', { x: L, y: H - 6 }, '10 min ago'),
    s('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, 'now'),
  ];
  names.forEach((name, i) => {
    const pts = samples.filter((x) => x.sinks[name]).map((x) => `${xOf(x.t).toFixed(1)},${yOf(x.sinks[name].offsets).toFixed(1)}`);
    if (pts.length) parts.push(s('polyline', { points: pts.join(' '), fill: 'none', stroke: COLORS[i % COLORS.length], 'stroke-width': 2, 'data-sink': name }));
  });
  svg.replaceChildren(...parts);
  const last = samples[samples.length - 1];
  $('#lag-legend').replaceChildren(...names.map((name, i) => {
    const sw = h('span', { class: 'swatch' });
    sw.style.background = COLORS[i % COLORS.length];
    return h('li', {}, sw, `${name}: ${fmt(last?.sinks[name]?.offsets ?? null)}`);
  }));
  svg.setAttribute('aria-label', `Lag chart: ${names.map((n) => `${n} ${last?.sinks[n]?.offsets ?? 'no data'}`).join(', ') || 'no sinks'}`);
}

// ---------- processors and expectations ----------

function lastFailure(f) {
  if (f === undefined || f === null) return '–';
  if (typeof f !== 'object') return String(f);
  if (f.reason) return f.at ? `${f.reason} (${new Date(f.at).toLocaleString()})` : f.reason;
  return JSON.stringify(f);
}

function renderProcessors() {
  const procs = status?.processors ?? [];
  fill($('#processors-table tbody'), procs.map((p) =>
    h('tr', { 'data-processor': p.name },
      h('td', { text: p.name }),
      h('td', { text: p.type }),
      h('td', {}, badge(p.state)),
      h('td', { class: 'num', 'data-col': 'processed', text: fmt(p.processed) }),
      h('td', { class: 'num', 'data-col': 'written', text: fmt(p.written) }),
      h('td', { class: 'num', 'data-col': 'deadLettered', text: fmt(p.deadLettered ?? 0) }),
      h('td', { class: 'error wrap', text: errText(p.error) }),
    )), 'no processors', 7);
  const withExp = procs.filter((p) => Array.isArray(p.expectations) && p.expectations.length);
  if (!withExp.length) {
    $('#expectations').replaceChildren(h('p', { text: 'no processor has expectations' }));
    return;
  }
  $('#expectations').replaceChildren(...withExp.map((p) =>
    h('div', {},
      h('h4', { text: `processor ${p.name}` }),
      h('table', { 'data-expectations': p.name },
        h('thead', {}, h('tr', {}, ...['Expectation', 'Check', 'Action', 'Passed', 'Failed', 'Last failure'].map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, p.expectations.map((e) =>
          h('tr', { 'data-expectation': e.name },
            h('td', {}, e.failed ? badge('fail') : badge('pass'), ' ', e.name),
            h('td', { class: 'mono wrap', text: e.check ?? '' }),
            h('td', { text: e.action ?? '' }),
            h('td', { class: 'num', 'data-col': 'passed', text: fmt(e.passed ?? 0) }),
            h('td', { class: 'num', 'data-col': 'failed', text: fmt(e.failed ?? 0) }),
            h('td', { class: 'wrap', 'data-col': 'lastFailure', text: lastFailure(e.lastFailure) }),
          ))),
      ),
    )));
}

// ---------- reconcile ----------

async function loadReconcile() {
  const r = await api('/api/reconcile');
  const box = $('#reconcile');
  if (!r.runs?.length) {
    box.replaceChildren(h('p', { id: 'reconcile-empty', text: r.message ?? 'no runs yet' }));
    return;
  }
  box.replaceChildren(...r.runs.map((run) =>
    h('section', { class: 'run' },
      h('h3', {}, run.ok ? badge('ok') : badge('failed'), ` ${run.startedAt ?? ''}${run.finishedAt ? ` → ${run.finishedAt}` : ''}`),
      h('table', {},
        h('thead', {}, h('tr', {}, ...['Sink', 'Table', 'Source rows', 'Target rows', 'Missing', 'Extra', 'Differing', 'Rows/s'].map((c) => h('th', { scope: 'col', text: c })))),
        h('tbody', {}, (run.results ?? []).map((x) =>
          h('tr', {},
            h('td', { text: x.sink }), h('td', { class: 'mono', text: x.table }),
            h('td', { class: 'num', text: fmt(x.sourceRows) }), h('td', { class: 'num', text: fmt(x.targetRows) }),
            h('td', { class: 'num', text: fmt(x.missing) }), h('td', { class: 'num', text: fmt(x.extra) }),
            h('td', { class: 'num', text: fmt(x.differing) }), h('td', { class: 'num', text: fmt(x.rowsPerSec) }),
          ))),
      ),
    )));
}

// ---------- dead letters ----------

function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

async function loadDlq() {
  const q = $('#dlq-q').value;
  const r = await api(`/api/dlq?max=500${q ? `&q=${encodeURIComponent(q)}` : ''}`);
  $('#dlq-count').textContent = (r.exists ? (q ? `${r.matched} of ${r.total} dead letters match` : `${r.total} dead letters`) : 'no dead letters (the topic does not exist)') + (r.truncated ? ` (${r.truncated})` : '');
  $('#dlq-count').dataset.matched = String(r.matched);
  $('#dlq-count').dataset.total = String(r.total);
  fill($('#dlq-table tbody'), r.items.map((d) =>
    h('tr', { 'data-offset': d.offset },
      h('td', { class: 'num', text: d.offset }),
      h('td', { text: new Date(d.deadLetteredAt).toLocaleString() }),
      h('td', { text: d.component }),
      h('td', { class: 'mono', text: d.input }),
      h('td', { class: 'mono', text: d.code }),
      h('td', { class: 'wrap', text: d.message }),
      h('td', { class: 'mono wrap', text: d.key ?? '' }),
      h('td', { class: 'mono wrap' }, d.value === null ? 'null' : d.value.length <= 120 ? d.value : h('details', {}, h('summary', { text: `${d.value.slice(0, 120)}…` }), h('pre', { text: pretty(d.value) }))),
    )), q ? 'nothing matches' : 'no dead letters', 8);
}

$('#dlq-search').addEventListener('submit', (ev) => {
  ev.preventDefault();
  loadDlq().catch(report);
});

$('#dlq-replay').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = $('#dlq-replay-result');
  const button = $('#dlq-replay-button');
  const processor = $('#dlq-processor').value;
  button.disabled = true;
  out.className = '';
  out.textContent = 'replaying…';
  try {
    const r = await api('/api/dlq/replay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(processor ? { processor } : {}) });
    const per = Object.entries(r.replayed ?? {}).map(([p, n]) => `${p}: ${n}`).join(', ');
    out.textContent = !r.topicExists ? 'nothing to replay: no dead letters' : `replayed ${r.total} dead letter(s)${per ? ` (${per})` : ''}${r.sinkDeadLetters ? `; ${r.sinkDeadLetters} sink dead letter(s) left` : ''}`;
    out.dataset.total = String(r.total);
  } catch (e) {
    if (e instanceof Unauthorized) return;
    out.className = 'error';
    out.textContent = `replay failed: ${e.message}`;
  } finally {
    button.disabled = false;
  }
});

// ---------- graph ----------

async function loadGraph() {
  const g = await api('/api/graph');
  const byId = new Map(g.nodes.map((n) => [n.id, n]));
  // Layers: the longest path from a node without inputs (bounded, in case of a cycle).
  const layer = new Map(g.nodes.map((n) => [n.id, 0]));
  for (let i = 0; i < g.nodes.length; i++) {
    let moved = false;
    for (const e of g.edges) {
      if (!byId.has(e.from) || !byId.has(e.to)) continue;
      const want = layer.get(e.from) + 1;
      if (want > layer.get(e.to)) {
        layer.set(e.to, want);
        moved = true;
      }
    }
    if (!moved) break;
  }
  const columns = [];
  for (const n of g.nodes) (columns[layer.get(n.id)] ??= []).push(n);
  const BW = 190, BH = 40, GX = 70, GY = 18, P = 16;
  const pos = new Map();
  columns.forEach((col, x) => (col ?? []).forEach((n, y) => pos.set(n.id, { x: P + x * (BW + GX), y: P + y * (BH + GY) })));
  const width = P * 2 + columns.length * (BW + GX) - GX;
  const height = P * 2 + Math.max(1, ...columns.map((c) => c?.length ?? 0)) * (BH + GY) - GY;
  const svg = $('#graph');
  svg.setAttribute('viewBox', `0 0 ${Math.max(width, 200)} ${Math.max(height, 80)}`);
  svg.setAttribute('height', String(Math.max(height, 80)));
  const marker = s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' });
  marker.append(s('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrow' }));
  const defs = s('defs');
  defs.append(marker);
  const parts = [defs];
  for (const e of g.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + BW, y1 = a.y + BH / 2, x2 = b.x, y2 = b.y + BH / 2, mx = (x1 + x2) / 2;
    // An edge back to an earlier column (to the dead-letter topic) bends below the boxes.
    const d = x2 > x1 ? `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` : `M${x1},${y1} C${x1 + GX},${y1 + BH} ${x2 - GX},${y2 + BH} ${x2},${y2}`;
    parts.push(s('path', { d, 'marker-end': 'url(#arrow)', class: byId.get(e.to)?.name.endsWith('.dlq') ? 'dead' : '', 'data-edge': `${e.from}->${e.to}` }));
  }
  for (const n of g.nodes) {
    const p = pos.get(n.id);
    const label = n.name.length > 28 ? `${n.name.slice(0, 27)}…` : n.name;
    const grp = s('g', { class: `node ${n.kind}`, transform: `translate(${p.x},${p.y})`, 'data-node': n.id });
    grp.append(s('title', {}, `${n.kind} ${n.name}${n.type ? ` [${n.type}]` : ''}${n.writes ? ` → ${n.writes}` : ''}`));
    grp.append(s('rect', { width: BW, height: BH, rx: 5 }));
    grp.append(s('text', { x: 8, y: 14, class: 'kind' }, `${n.kind}${n.type ? ` · ${n.type}` : ''}`));
    grp.append(s('text', { x: 8, y: 31 }, label));
    parts.push(grp);
  }
  svg.replaceChildren(...parts);
  svg.setAttribute('aria-label', `Pipeline graph: ${g.nodes.map((n) => `${n.kind} ${n.name}`).join(', ')}`);
  const inputs = (id) => g.edges.filter((e) => e.to === id).map((e) => byId.get(e.from)?.name ?? e.from);
  $('#graph-list').replaceChildren(...g.nodes.filter((n) => n.kind !== 'topic').map((n) =>
    h('li', { 'data-node': n.id }, h('strong', { text: `${n.kind} ${n.name}` }), n.type ? ` [${n.type}]` : '', inputs(n.id).length ? ` ← ${inputs(n.id).join(', ')}` : '', n.writes ? ` → ${n.writes}` : '')));
}

// ---------- refresh ----------

async function refreshLive() {
  [status, topics] = await Promise.all([api('/api/status'), api('/api/topics')]);
  clearBanner();
  renderHeader();
  renderOverview();
  renderTopics();
  renderSinks();
  renderProcessors();
  if (page === 'sinks') renderLag(await api('/api/lag'));
}

async function refreshPage() {
  if (page === 'sinks') renderLag(await api('/api/lag'));
  else if (page === 'dlq') await loadDlq();
  else if (page === 'reconcile') await loadReconcile();
  else if (page === 'graph') await loadGraph();
}

let timer = null;
async function start() {
  try {
    info = await api('/api/info');
  } catch (e) {
    report(e);
    return;
  }
  const sel = $('#dlq-processor');
  sel.replaceChildren(h('option', { value: '', text: 'every processor' }), ...info.processors.map((p) => h('option', { value: p.name, text: p.name })));
  if (!info.processors.length) $('#dlq-replay-button').disabled = true;
  await refreshLive().catch(report);
  select(location.hash.slice(1) || 'overview');
  clearInterval(timer);
  timer = setInterval(() => refreshLive().catch(report), REFRESH_MS);
}

start();
