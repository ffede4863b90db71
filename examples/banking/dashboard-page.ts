/**
 * The dashboard's single page: HTML, CSS and script inline (nothing to fetch but /api/state, so it
 * works offline and behind any proxy). The script polls every 500 ms, prints documents the way the
 * MongoDB shell shows them (ISODate, exact decimals), flashes documents that changed since the
 * previous poll and keeps a one-minute sparkline of the lag percentiles.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sluice · banking operational data layer</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  :root { --bg:#f5f6f8; --card:#fff; --ink:#1d2330; --mute:#6b7385; --line:#e3e6ec; --acc:#1f6feb; --ok:#1a7f37; --warn:#b35900; --bad:#c62828; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:baseline; gap:16px; padding:14px 22px; background:#111827; color:#fff; }
  header h1 { font-size:18px; margin:0; font-weight:600; }
  header .flow { color:#9ca3af; font-size:13px; }
  header .status { margin-left:auto; font-size:12px; color:#9ca3af; }
  header .status.err { color:#fca5a5; }
  main { padding:16px 22px 28px; display:grid; gap:14px; grid-template-columns: repeat(12, 1fr); }
  .card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 14px; min-width:0; }
  .card h2 { font-size:12px; text-transform:uppercase; letter-spacing:.06em; color:var(--mute); margin:0 0 8px; font-weight:600; }
  .s3 { grid-column: span 3; } .s4 { grid-column: span 4; } .s5 { grid-column: span 5; } .s6 { grid-column: span 6; } .s12 { grid-column: span 12; }
  @media (max-width: 1100px) { .s3, .s4, .s5, .s6 { grid-column: span 12; } }
  .counts { display:grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap:6px 14px; }
  .count { display:flex; justify-content:space-between; gap:10px; border-bottom:1px dashed var(--line); padding:2px 0; }
  .count b { font-variant-numeric: tabular-nums; font-size:16px; }
  .big { font-size:26px; font-weight:600; font-variant-numeric: tabular-nums; }
  .mute { color:var(--mute); font-size:12px; }
  table.lag { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  table.lag th, table.lag td { text-align:right; padding:3px 6px; border-bottom:1px solid var(--line); }
  table.lag th:first-child, table.lag td:first-child { text-align:left; }
  canvas { width:100%; height:54px; display:block; margin-top:8px; }
  ul.ops { list-style:none; margin:6px 0 0; padding:0; font-size:12px; max-height:150px; overflow:auto; }
  ul.ops li { padding:2px 0; border-bottom:1px solid var(--line); white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
  ul.ops .k { display:inline-block; min-width:150px; padding-right:8px; color:var(--acc); }
  .docs { display:grid; gap:8px; }
  pre.doc { margin:0; padding:8px 10px; background:#fbfbfd; border:1px solid var(--line); border-radius:6px; font:12px/1.35 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space:pre-wrap; overflow-wrap:anywhere; overflow:auto; max-height:560px; }
  pre.doc.flash { animation: flash 1.6s ease-out; }
  @keyframes flash { from { background:#fff3bf; border-color:#f0c000; } to { background:#fbfbfd; border-color:var(--line); } }
  .j-k { color:#7a3e9d; } .j-s { color:#1a7f37; } .j-n { color:#0550ae; } .j-d { color:#b35900; } .j-null { color:#8c959f; }
  .pill { display:inline-block; padding:1px 7px; border-radius:10px; font-size:11px; font-weight:600; }
  table.grid { width:100%; border-collapse:collapse; font-size:12px; font-variant-numeric: tabular-nums; }
  table.grid th, table.grid td { text-align:right; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
  table.grid th { color:var(--mute); font-weight:600; }
  table.grid th.l, table.grid td.l { text-align:left; }
  table.grid tr.flash td { animation: flash 1.6s ease-out; }
  .labels { display:flex; flex-wrap:wrap; gap:6px; margin-bottom:8px; }
  .hours { display:inline-flex; align-items:flex-end; gap:1px; height:18px; vertical-align:middle; }
  .hours i { display:block; width:3px; background:#1f6feb; min-height:1px; }
  .ok { background:#dafbe1; color:var(--ok); } .warn { background:#fff1e0; color:var(--warn); } .bad { background:#ffebe9; color:var(--bad); }
</style>
</head>
<body>
<header>
  <h1>Banking operational data layer</h1>
  <span class="flow">MariaDB binlog → Sluice log → ODL documents (odl_cluster1) → analytics (odl_cluster2)</span>
  <span class="status" id="status">connecting…</span>
</header>
<main>
  <section class="card s4"><h2>Operational layer (Cluster 1)</h2><div class="counts" id="odlCounts"></div>
    <h2 style="margin-top:12px">Analytics (Cluster 2)</h2><div class="counts" id="anCounts"></div></section>
  <section class="card s3"><h2>Live workload</h2>
    <div><span class="big" id="rate">–</span> <span class="mute">commits/s (last 10 s), target <span id="target">–</span></span></div>
    <div class="mute" id="totals"></div>
    <ul class="ops" id="ops"></ul></section>
  <section class="card s5"><h2>End-to-end lag: MySQL commit → visible (last minute)</h2>
    <table class="lag"><thead><tr><th></th><th>p50</th><th>p95</th><th>max</th><th>commits</th></tr></thead>
      <tbody><tr><td>ODL documents</td><td id="o50">–</td><td id="o95">–</td><td id="oMax">–</td><td id="oN">–</td></tr>
      <tr><td>Analytics</td><td id="a50">–</td><td id="a95">–</td><td id="aMax">–</td><td id="aN">–</td></tr></tbody></table>
    <div class="mute" id="pending" style="margin-top:6px"></div>
    <canvas id="spark" width="600" height="54"></canvas>
    <div class="mute"><span style="color:#1f6feb">■</span> ODL p50 <span style="color:#b35900">■</span> analytics p50, one minute</div></section>
  <section class="card s4"><h2>Customers, most recently synced</h2><div class="docs" id="customers"></div></section>
  <section class="card s4"><h2>Accounts, most recently synced</h2><div class="docs" id="accounts"></div></section>
  <section class="card s4"><h2>customer_analytics, changed last</h2><div class="docs" id="analytics"></div></section>
  <section class="card s12"><h2>account_metrics, changed last</h2>
    <table class="grid" id="accountMetrics"><thead><tr><th class="l">account</th><th class="l">customer</th><th class="l">type</th><th class="l">status</th><th>balance</th>
      <th>transactions</th><th>credits</th><th>debits</th><th>average</th><th>largest</th><th>last 30 days: txns</th><th>net</th><th class="l">last transaction</th></tr></thead>
      <tbody></tbody></table>
    <div class="mute">Effective (completed or pending) transactions; the 30 days end at the account's last transaction.</div></section>
  <section class="card s12"><h2>transaction_patterns</h2>
    <div class="labels" id="patternLabels"></div>
    <table class="grid" id="patterns"><thead><tr><th class="l">customer</th><th class="l">pattern</th><th>transactions</th><th>total</th><th>average</th>
      <th>peak hour (UTC)</th><th class="l">peak day</th><th>anomalies</th><th class="l">by hour</th></tr></thead>
      <tbody></tbody></table>
    <div class="mute">Anomaly: an amount above the customer's mean + 3σ.</div></section>
</main>
<script>
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  function esc(s) { return String(s).replace(/[&<>"]/g, function (c) { return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]; }); }
  function pad(n) { var s = ""; for (var i = 0; i < n; i++) s += "  "; return s; }
  function isPrim(v) { return v === null || typeof v !== "object" || v.$date !== undefined || v.$decimal !== undefined || v.$long !== undefined; }
  /* Prints a document like the MongoDB shell: ISODate(...), exact decimals, NumberLong(...). */
  function show(v, depth) {
    if (v === null) return '<span class="j-null">null</span>';
    if (typeof v === "string") return '<span class="j-s">"' + esc(v) + '"</span>';
    if (typeof v === "number" || typeof v === "boolean") return '<span class="j-n">' + v + "</span>";
    if (v.$date !== undefined) return '<span class="j-d">ISODate("' + esc(v.$date) + '")</span>';
    if (v.$decimal !== undefined) return '<span class="j-n" title="exact decimal">' + esc(v.$decimal) + "</span>";
    if (v.$long !== undefined) return '<span class="j-n">NumberLong("' + esc(v.$long) + '")</span>';
    if (Array.isArray(v)) {
      if (v.every(isPrim)) return "[" + v.map(function (x) { return show(x, depth); }).join(", ") + "]";
      return "[\\n" + v.map(function (x) { return pad(depth + 1) + show(x, depth + 1); }).join(",\\n") + "\\n" + pad(depth) + "]";
    }
    var keys = Object.keys(v);
    if (!keys.length) return "{}";
    return "{\\n" + keys.map(function (k) { return pad(depth + 1) + '<span class="j-k">' + esc(k) + "</span>: " + show(v[k], depth + 1); }).join(",\\n") + "\\n" + pad(depth) + "}";
  }
  var seen = {};
  function docs(id, list) {
    var el = $(id), html = "";
    var next = {};
    list.forEach(function (d) {
      var key = id + ":" + JSON.stringify(d._id), text = JSON.stringify(d);
      next[key] = text;
      var changed = seen[key] !== undefined && seen[key] !== text || (seen[key] === undefined && Object.keys(seen).length > 0);
      html += '<pre class="doc' + (changed ? " flash" : "") + '">' + show(d, 0) + "</pre>";
    });
    Object.keys(seen).forEach(function (k) { if (k.indexOf(id + ":") === 0) delete seen[k]; });
    Object.keys(next).forEach(function (k) { seen[k] = next[k]; });
    el.innerHTML = html || '<span class="mute">no documents yet</span>';
  }
  function counts(id, o) {
    $(id).innerHTML = Object.keys(o).map(function (k) { return '<div class="count"><span>' + esc(k) + "</span><b>" + Number(o[k]).toLocaleString() + "</b></div>"; }).join("");
  }
  /* Money as exact text: a Decimal's digits, or a JSON number (JSONB store) to cents. */
  function money(v) { return v === null || v === undefined ? "–" : v.$decimal !== undefined ? v.$decimal : typeof v === "number" ? v.toFixed(2) : String(v); }
  function day(v) { return v && v.$date ? v.$date.slice(0, 16).replace("T", " ") : v ? String(v).slice(0, 16).replace("T", " ") : "–"; }
  function cell(f, v, left) { return '<td data-f="' + f + '"' + (left ? ' class="l"' : "") + ">" + esc(v === null || v === undefined ? "–" : v) + "</td>"; }
  var rowSeen = {};
  function rows(id, list, key, build) {
    var next = {}, html = "";
    list.forEach(function (d) {
      var k = id + ":" + JSON.stringify(d._id), text = JSON.stringify(Object.assign({}, d, { computed_at: null }));
      next[k] = text;
      var changed = rowSeen[k] !== undefined && rowSeen[k] !== text;
      html += '<tr data-' + key + '="' + esc(d._id) + '"' + (changed ? ' class="flash"' : "") + ">" + build(d) + "</tr>";
    });
    rowSeen = Object.assign(Object.keys(rowSeen).reduce(function (o, k) { if (k.indexOf(id + ":") !== 0) o[k] = rowSeen[k]; return o; }, {}), next);
    $(id).querySelector("tbody").innerHTML = html;
  }
  function metricsRow(m) {
    var r = m.last_30_days || {};
    return cell("account_number", m.account_number, true) + cell("customer_id", m.customer_id, true) + cell("account_type", m.account_type, true) + cell("status", m.status, true) +
      cell("balance", money(m.balance)) + cell("transaction_count", m.transaction_count) + cell("total_credits", money(m.total_credits)) + cell("total_debits", money(m.total_debits)) +
      cell("avg_transaction_amount", money(m.avg_transaction_amount)) + cell("largest_transaction", money(m.largest_transaction)) +
      cell("last_30_days.transaction_count", r.transaction_count) + cell("last_30_days.net_flow", money(r.net_flow)) + cell("last_transaction_date", day(m.last_transaction_date), true);
  }
  var PILL = { REGULAR: "ok", IRREGULAR: "warn", BURSTY: "bad", SPORADIC: "warn", INACTIVE: "" };
  function patternRow(p) {
    var top = Math.max.apply(null, (p.by_hour || []).concat([1]));
    var bars = (p.by_hour || []).map(function (n, h) { return '<i title="' + h + ':00 UTC: ' + n + '" style="height:' + Math.round(n / top * 18) + 'px"></i>'; }).join("");
    return cell("customer_id", p.customer_id, true) + '<td data-f="pattern" class="l"><span class="pill ' + (PILL[p.pattern] || "") + '">' + esc(p.pattern) + "</span></td>" +
      cell("transaction_count", p.transaction_count) + cell("total_amount", money(p.total_amount)) + cell("avg_amount", money(p.avg_amount)) +
      cell("peak_hour", p.peak_hour) + cell("peak_weekday", p.peak_weekday, true) + cell("anomalies.count", p.anomalies ? p.anomalies.count : 0) +
      '<td class="l"><span class="hours">' + bars + "</span></td>";
  }
  function patterns(s) {
    var labels = ["REGULAR", "IRREGULAR", "BURSTY", "SPORADIC", "INACTIVE"];
    Object.keys(s.byLabel).forEach(function (k) { if (labels.indexOf(k) < 0) labels.push(k); });
    $("patternLabels").innerHTML = labels.map(function (k) { return '<span class="pill ' + (PILL[k] || "") + '" data-pattern="' + esc(k) + '">' + esc(k) + " <b>" + (s.byLabel[k] || 0) + "</b></span>"; }).join("") +
      ' <span class="mute" id="anomalyTotal" data-anomalies="' + s.anomalies + '" data-customers="' + s.customersWithAnomalies + '">' + s.anomalies + " anomalous transactions at " + s.customersWithAnomalies + " customers</span>";
    rows("patterns", s.recent, "customer", patternRow);
  }
  function ms(v) { return v === null || v === undefined ? "–" : v < 1000 ? Math.round(v) + " ms" : (v / 1000).toFixed(2) + " s"; }
  var history = [];
  function spark() {
    var c = $("spark"), g = c.getContext("2d"), w = c.width, h = c.height;
    g.clearRect(0, 0, w, h);
    var now = Date.now(), pts = history.filter(function (p) { return p.t > now - 60000; });
    history = pts;
    var top = 1;
    pts.forEach(function (p) { top = Math.max(top, p.o || 0, p.a || 0); });
    g.strokeStyle = "#e3e6ec"; g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
    [["o", "#1f6feb"], ["a", "#b35900"]].forEach(function (s) {
      g.strokeStyle = s[1]; g.lineWidth = 2; g.beginPath();
      var started = false;
      pts.forEach(function (p) {
        if (p[s[0]] === null || p[s[0]] === undefined) return;
        var x = w - (now - p.t) / 60000 * w, y = h - 3 - (p[s[0]] / top) * (h - 8);
        if (started) g.lineTo(x, y); else { g.moveTo(x, y); started = true; }
      });
      g.stroke();
    });
    g.fillStyle = "#6b7385"; g.font = "11px system-ui"; g.fillText(ms(top), 4, 11);
  }
  function render(s) {
    $("status").className = "status" + (s.error ? " err" : "");
    $("status").textContent = s.error ? "store error: " + s.error : "updated " + new Date(s.at).toLocaleTimeString();
    counts("odlCounts", s.counts.odl);
    counts("anCounts", s.counts.analytics);
    var w = s.workload;
    if (w) {
      $("rate").textContent = w.ratePerSec.toFixed(1);
      $("target").textContent = w.targetRatePerSec + "/s" + (w.running ? "" : " (stopped)");
      $("totals").textContent = w.total + " commits · " + Object.keys(w.byKind).map(function (k) { return k.replace("_", " ") + " " + w.byKind[k]; }).join(" · ") + (w.errors ? " · errors " + w.errors + " (" + w.lastError + ")" : "");
      $("ops").innerHTML = w.recent.map(function (r) { return "<li><span class=\\"k\\">" + new Date(r.committedAt).toLocaleTimeString() + " " + esc(r.kind) + "</span>" + esc(r.text) + "</li>"; }).join("");
    } else {
      $("rate").textContent = "–"; $("totals").textContent = "no workload running"; $("ops").innerHTML = "";
    }
    var l = s.lag;
    if (l) {
      $("o50").textContent = ms(l.odl.p50); $("o95").textContent = ms(l.odl.p95); $("oMax").textContent = ms(l.odl.max); $("oN").textContent = l.odl.count;
      $("a50").textContent = ms(l.analytics.p50); $("a95").textContent = ms(l.analytics.p95); $("aMax").textContent = ms(l.analytics.max); $("aN").textContent = l.analytics.count;
      var cls = l.oldestPendingMs === null ? "ok" : l.oldestPendingMs < 5000 ? "ok" : l.oldestPendingMs < 30000 ? "warn" : "bad";
      $("pending").innerHTML = '<span class="pill ' + cls + '">' + l.pending + " pending</span> oldest " + ms(l.oldestPendingMs) + (l.expired ? " · " + l.expired + " never seen (expired)" : "");
      history.push({ t: Date.now(), o: l.odl.p50, a: l.analytics.p50 });
    }
    spark();
    docs("customers", s.recent.customers);
    docs("accounts", s.recent.accounts);
    docs("analytics", s.analyticsChanged);
    rows("accountMetrics", s.accountMetrics || [], "account", metricsRow);
    if (s.patterns) patterns(s.patterns);
  }
  function poll() {
    fetch("/api/state", { cache: "no-store" }).then(function (r) { return r.json(); }).then(function (s) {
      if (s.counts) render(s); else throw new Error(s.error || "bad state");
    }).catch(function (e) {
      $("status").className = "status err"; $("status").textContent = "dashboard unreachable: " + e.message;
    }).then(function () { setTimeout(poll, 500); });
  }
  poll();
})();
</script>
</body>
</html>
`;
