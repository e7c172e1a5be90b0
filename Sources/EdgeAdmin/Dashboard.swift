// The dashboard: one page (HTML, CSS and JavaScript, no outside assets) served
// by the admin API at `/`. It polls `v1/live` (relative, so it also works under
// `edgectl dashboard`'s forwarding prefix) once a second and draws per-tenant
// charts on canvases. On the TCP admin listener the page itself needs no token
// (it holds no data); it asks for one when `v1/live` answers 401 and keeps it
// for the browser tab only (sessionStorage).

let dashboardPage = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edged dashboard</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg:#0f1419; --card:#182029; --fg:#d8dee6; --dim:#7d8a99; --line:#2a3440;
          --a:#4fb3ff; --b:#ffb454; --ok:#7fd962; --warn:#ffb454; --bad:#ff6b6b; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 13px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--fg); }
  header { display: flex; gap: 24px; align-items: baseline; padding: 12px 20px; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 16px; margin: 0; }
  .kpi { color: var(--dim); } .kpi b { color: var(--fg); font-size: 18px; margin-left: 4px; font-variant-numeric: tabular-nums; }
  #status { margin-left: auto; color: var(--dim); }
  main { padding: 12px 20px; display: flex; flex-direction: column; gap: 16px; }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
  .card h2 { font-size: 14px; margin: 0 0 8px; display: flex; gap: 16px; align-items: baseline; }
  .card h2 span { color: var(--dim); font-weight: normal; font-size: 12px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; }
  .chart { border: 1px solid var(--line); border-radius: 4px; padding: 6px; }
  .chart .t { color: var(--dim); font-size: 11px; display: flex; justify-content: space-between; }
  canvas { width: 100%; height: 90px; display: block; }
  .tables { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 10px; margin-top: 10px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 2px 6px; border-bottom: 1px solid var(--line); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 360px; }
  th { color: var(--dim); font-weight: normal; }
  td.n { text-align: right; }
  .up { color: var(--ok); } .down { color: var(--bad); }
  #login { display: none; padding: 20px; } #login input { width: 360px; }
</style>
</head>
<body>
<header>
  <h1>edged</h1>
  <div class="kpi">requests <b id="total-requests">–</b></div>
  <div class="kpi">req/s <b id="total-rps">–</b></div>
  <div class="kpi">hit ratio <b id="total-hit">–</b></div>
  <div class="kpi">cache <b id="cache-mem">–</b></div>
  <div id="status">connecting…</div>
</header>
<div id="login">The admin API asks for its bearer token:
  <input id="token" type="password" autocomplete="off"> <button id="go">Use</button></div>
<main id="tenants"></main>
<script>
"use strict";
const MAXPTS = 900;
const state = { since: 0, tenants: {}, columns: [] };
let token = sessionStorage.getItem("edged-token") || "";

function fmt(n, unit) {
  if (n === null || n === undefined || n < 0 || Number.isNaN(n)) return "–";
  const k = unit === "B" ? 1024 : 1000;
  const s = ["", "k", "M", "G", "T"];
  let i = 0;
  while (Math.abs(n) >= k && i < s.length - 1) { n /= k; i++; }
  return (i === 0 && Number.isInteger(n) ? n : n.toFixed(n < 10 ? 2 : 1)) + s[i] + (unit || "");
}

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of kids) e.append(c);
  return e;
}

function card(name) {
  const id = "t-" + name.replace(/[^A-Za-z0-9_-]/g, "_");
  let c = document.getElementById(id);
  if (c) return c;
  c = el("section", { class: "card", id });
  c.append(el("h2", {}, name === "-" ? "(no tenant)" : name, el("span", { class: "sum" })));
  const charts = el("div", { class: "charts" });
  for (const [key, title] of [["rps", "requests/s"], ["hit", "hit ratio"], ["bw", "bandwidth"], ["status", "status classes"], ["lat", "latency p50 / p99 (ms)"]]) {
    charts.append(el("div", { class: "chart" }, el("div", { class: "t" }, el("span", {}, title), el("span", { class: "v-" + key })),
                     el("canvas", { class: "c-" + key, width: 300, height: 90 })));
  }
  c.append(charts);
  c.append(el("div", { class: "tables" }));
  document.getElementById("tenants").append(c);
  return c;
}

function draw(canvas, series, colors, opts) {
  const w = canvas.clientWidth || 300, h = canvas.clientHeight || 90;
  const dpr = window.devicePixelRatio || 1;
  if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr); }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  let max = opts && opts.max ? opts.max : 0;
  for (const s of series) for (const v of s) if (v > max) max = v;
  if (max <= 0) max = 1;
  g.strokeStyle = "#2a3440"; g.beginPath(); g.moveTo(0, h - 0.5); g.lineTo(w, h - 0.5); g.stroke();
  series.forEach((s, k) => {
    g.strokeStyle = colors[k]; g.lineWidth = 1.5; g.beginPath();
    const n = s.length;
    s.forEach((v, i) => {
      const x = n <= 1 ? w : (i / (n - 1)) * w;
      const y = v < 0 ? h : h - (v / max) * (h - 4);
      if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
    });
    g.stroke();
  });
}

function table(title, head, rows) {
  const t = el("table", {});
  t.append(el("tr", {}, ...head.map((h, i) => el("th", i > 0 ? { class: "n" } : {}, h))));
  for (const r of rows) t.append(el("tr", {}, ...r.map((v, i) => {
    if (v instanceof Node) return el("td", {}, v);
    return el("td", i > 0 ? { class: "n" } : { title: String(v) }, String(v));
  })));
  if (rows.length === 0) t.append(el("tr", {}, el("td", { colspan: head.length }, "none yet")));
  return el("div", {}, el("div", { class: "t", style: "color:var(--dim);font-size:11px" }, title), t);
}

function render(d) {
  const col = {}; d.columns.forEach((c, i) => col[c] = i);
  for (const t of d.tenants) {
    const pts = (state.tenants[t.tenant] = (state.tenants[t.tenant] || []).concat(t.points)).slice(-MAXPTS);
    state.tenants[t.tenant] = pts;
    const c = card(t.tenant);
    const get = k => pts.map(p => p[col[k]]);
    const last = pts.length ? pts[pts.length - 1] : null;
    draw(c.querySelector(".c-rps"), [get("requests")], ["#4fb3ff"]);
    draw(c.querySelector(".c-hit"), [get("hit_ratio")], ["#7fd962"], { max: 1 });
    draw(c.querySelector(".c-bw"), [get("bytes")], ["#b48eff"]);
    draw(c.querySelector(".c-status"), [get("s2xx"), get("s3xx"), get("s4xx"), get("s5xx")], ["#7fd962", "#4fb3ff", "#ffb454", "#ff6b6b"]);
    draw(c.querySelector(".c-lat"), [get("p50_ms"), get("p99_ms")], ["#4fb3ff", "#ffb454"]);
    if (last) {
      c.querySelector(".v-rps").textContent = fmt(last[col.requests]);
      c.querySelector(".v-hit").textContent = last[col.hit_ratio] < 0 ? "–" : (last[col.hit_ratio] * 100).toFixed(1) + "%";
      c.querySelector(".v-bw").textContent = fmt(last[col.bytes], "B") + "/s";
      c.querySelector(".v-status").textContent = ["s2xx", "s3xx", "s4xx", "s5xx"].map(k => fmt(last[col[k]])).join(" / ");
      c.querySelector(".v-lat").textContent = fmt(last[col.p50_ms]) + " / " + fmt(last[col.p99_ms]);
    }
    const tot = d.totals.find(x => x.tenant === t.tenant);
    const health = d.health.find(x => x.name === t.tenant);
    const tables = [];
    tables.push(table("top URLs (req/s)", ["url", "req/s"], t.top.map(u => [u.url, u.rate])));
    tables.push(table("top misses (req/s)", ["url", "req/s"], t.top_misses.map(u => [u.url, u.rate])));
    if (health && health.origins.length) {
      tables.push(table("origins", ["server", "group", "state"], health.origins.map(o =>
        [o.server, o.group, el("span", { class: o.healthy ? "up" : "down" }, o.healthy ? "up" : "down" + (o.down ? " (" + o.down + ")" : ""))])));
    }
    // Busiest tenants first; requests with no tenant (421s) last.
    c.style.order = t.tenant === "-" ? "2000000000" : String(-Math.min(2000000000, tot ? tot.requests : 0));
    if (tot) {
      c.querySelector(".sum").textContent = fmt(tot.requests) + " requests · hit " + (tot.hit_ratio * 100).toFixed(1) + "% · " +
        fmt(tot.bytes_served, "B") + " · origin errors " + fmt(tot.origin_errors) + " · cache " + fmt(tot.cache_bytes, "B") +
        (tot.disk_bytes ? " + disk " + fmt(tot.disk_bytes, "B") : "");
      if ((tot.rules || []).length) tables.push(table("rule matches", ["rule", "matched", "logged"], tot.rules.map(r => [r.rule, r.matched, r.logged])));
      if ((tot.limits || []).length) tables.push(table("rate limits", ["limit", "limited", "dry run"], tot.limits.map(l => [l.limit, l.limited, l.dry_run])));
    }
    c.querySelector(".tables").replaceChildren(...tables);
  }
  let total = 0, rps = 0, hits = 0, lookups = 0;
  for (const t of d.totals) total += t.requests;
  for (const [, pts] of Object.entries(state.tenants)) {
    if (!pts.length) continue;
    const p = pts[pts.length - 1];
    if (p[col.t] < d.now - 2) continue;
    rps += p[col.requests];
  }
  for (const t of d.totals) {
    const b = t.by_cache || {};
    const h = (b.hit || 0) + (b.stale || 0);
    hits += h; lookups += h + (b.revalidated || 0) + (b.miss || 0) + (b.pass || 0);
  }
  document.getElementById("total-requests").textContent = String(total);
  document.getElementById("total-rps").textContent = fmt(rps);
  document.getElementById("total-hit").textContent = lookups ? (hits / lookups * 100).toFixed(1) + "%" : "–";
  const m = d.cache.memory;
  document.getElementById("cache-mem").textContent = fmt(m.bytes, "B") + " / " + fmt(m.capacity, "B") +
    (d.cache.disks || []).map(x => " · disk " + fmt(x.bytes || 0, "B")).join("");
  document.getElementById("status").textContent = "updated " + new Date(d.now * 1000).toLocaleTimeString() +
    (d.tail.read < d.tail.lines + d.tail.dropped ? " · top URLs sampled" : "");
}

async function poll() {
  try {
    const headers = token ? { Authorization: "Bearer " + token } : {};
    const r = await fetch("v1/live?since=" + state.since, { headers, cache: "no-store" });
    if (r.status === 401) {
      document.getElementById("login").style.display = "block";
      document.getElementById("status").textContent = "token needed";
      return setTimeout(poll, 2000);
    }
    if (!r.ok) throw new Error("HTTP " + r.status);
    const d = await r.json();
    for (const t of d.tenants) for (const p of t.points) if (p[0] > state.since) state.since = p[0];
    render(d);
  } catch (e) {
    console.error("dashboard: " + e.message);
    document.getElementById("status").textContent = "no answer from edged (" + e.message + "), retrying";
  }
  setTimeout(poll, 1000);
}

document.getElementById("go").addEventListener("click", () => {
  token = document.getElementById("token").value.trim();
  sessionStorage.setItem("edged-token", token);
  document.getElementById("login").style.display = "none";
});
poll();
</script>
</body>
</html>
"""#
