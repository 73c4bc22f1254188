// fraudstream dashboard: polls /status and /status/series every second, draws on plain canvas.
// No build step, no library. Exposes window.dashboard (counters) for the browser test.
"use strict";

const COLORS = {
  blue: "#58a6ff", red: "#f85149", amber: "#d29922", green: "#3fb950", violet: "#bc8cff",
  grid: "#2a323c", dim: "#8a96a3", text: "#d8dee6",
};
const MARKER_COLORS = { drift: COLORS.red, warning: COLORS.amber, promotion: COLORS.green, rollback: COLORS.violet };
const SPAN_S = 600; // seconds of history kept on the time charts
const MIN_SPAN_S = 120; // the time axis grows with the history, from 2 to 10 minutes

const state = { samples: [], events: new Map(), lastT: null, status: null };
window.dashboard = { statusUpdates: 0, seriesUpdates: 0, errors: 0, lastError: null, charts: {} };

const $ = (id) => document.getElementById(id);
const fmtInt = (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US"));
const fmtPct = (x, d = 2) => (x == null ? "–" : (100 * x).toFixed(d) + " %");
const fmtNum = (x, d = 1) => (x == null ? "–" : Number(x).toFixed(d));
const fmtMetric = (x) => (x == null ? "–" : Number(x).toFixed(3));
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const clock = (t) => new Date(t * 1000).toLocaleTimeString("en-GB");

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { const e = new Error(body.detail || `HTTP ${r.status}`); e.status = r.status; throw e; }
  return body;
}

function every(ms, fn) {
  const loop = async () => {
    try { await fn(); } catch (e) { window.dashboard.errors++; window.dashboard.lastError = String(e); }
    setTimeout(loop, ms);
  };
  loop();
}

// ---- status: tiles and panels ---------------------------------------------------------------
function renderStatus(s) {
  state.status = s;
  window.dashboard.statusUpdates++;
  const down = s.components.workers.filter((w) => !w.alive).length;
  const health = $("health");
  health.textContent = s.healthy ? "healthy" : "degraded";
  health.dataset.state = s.healthy ? "ok" : "bad";
  const champ = s.models.champion;
  $("champion-version").textContent = champ ? `${champ.model} ${champ.version}` : "–";
  $("updated").textContent = clock(s.at);
  const alerts = s.alerts || [];
  $("alert-count").textContent = alerts.length ? `${alerts.length} alert${alerts.length > 1 ? "s" : ""} firing` : "no alerts";
  $("alert-count").dataset.state = alerts.length ? "bad" : "ok";

  $("throughput").textContent = fmtNum(s.throughput_per_s, 1);
  $("latency").textContent = `${fmtNum(s.latency_ms.p50)} / ${fmtNum(s.latency_ms.p99)}`;
  $("decline-rate").textContent = fmtPct(s.decline_rate);
  $("review-rate").textContent = `review ${fmtPct(s.review_rate)}`;
  $("fraud-rate").textContent = fmtPct(s.fraud_rate);
  $("scored").textContent = fmtInt(s.counts.scored);
  $("duplicates").textContent = `${fmtInt(s.counts.duplicates)} duplicates`;
  $("labels").textContent = fmtInt(s.counts.labels_learned);
  $("labels-fraud").textContent = `${fmtInt(s.counts.labels_fraud)} fraud`;
  $("dead-letters").textContent = fmtInt(s.counts.dead_letters);
  $("dead-letters-minute").textContent = `${fmtInt(s.dead_letters.last_minute)} in the last minute`;
  const groups = Object.entries(s.lag || {});
  $("lag").textContent = groups.length ? fmtInt(groups.reduce((a, [, g]) => a + g.total, 0)) : "–";
  $("lag-detail").textContent = groups.map(([name, g]) => `${name.endsWith("-learner") ? "learner" : "scorers"} ${fmtInt(g.total)}`).join(" · ") || "not measured";

  // models
  const rows = [];
  const slot = (name, m) => {
    if (!m) return;
    const x = m.metrics || {};
    rows.push(`<tr><td>${esc(name)}</td><td>${esc(m.model)}</td><td>${esc(m.version)}</td><td>${fmtInt(x.labels)}</td>` +
      `<td>${fmtMetric(x.average_precision)}</td><td>${fmtMetric(x.roc_auc)}</td><td>${fmtMetric(x.recall)}</td><td>${x.fpr == null ? "–" : fmtPct(x.fpr, 3)}</td></tr>`);
  };
  slot("champion", champ);
  (s.models.challengers || []).forEach((c) => slot(c.label || "challenger", c.metrics ? c : { model: c.name, version: c.version }));
  slot("background", s.models.background);
  $("models").tBodies[0].innerHTML = rows.join("");
  $("versions").textContent = (s.models.versions || []).join(", ") || "–";

  // criteria
  const cr = s.criteria;
  const cs = $("criteria-status");
  cs.textContent = cr.status;
  cs.dataset.state = cr.status === "pass" ? "ok" : cr.status === "fail" ? "bad" : "warn";
  $("criteria").tBodies[0].innerHTML = cr.criteria.map((c) => {
    const pct = c.criterion === "fpr" || c.criterion === "recall";
    const f = (v) => (v == null ? "not measured" : pct ? fmtPct(v, 3) : c.criterion.endsWith("_ms") ? `${fmtNum(v)} ms` : fmtMetric(v));
    const cls = c.passed === true ? "pass" : c.passed === false ? "fail" : "na";
    return `<tr><td>${esc(c.criterion)}</td><td>${c.op} ${f(c.target)}</td><td>${f(c.measured)}</td><td class="${cls}">${esc(c.status)}</td></tr>`;
  }).join("");
  $("criteria-note").textContent = `champion's rolling window: ${fmtInt(cr.labels)} labels (judged from ${fmtInt(cr.min_labels)}); latency: last 60 s`;

  // components
  const comp = [];
  const row = (name, ok, detail) => comp.push(`<tr><td>${esc(name)}</td><td class="${ok === true ? "pass" : ok === false ? "fail" : "na"}">${ok === true ? "up" : ok === false ? "DOWN" : "?"}</td><td>${esc(detail)}</td></tr>`);
  row("kafka", s.components.kafka.healthy, s.components.kafka.error || s.components.kafka.bootstrap || "");
  row("redis", s.components.redis.healthy, "");
  for (const w of s.components.workers) {
    row(`${w.role} ${w.worker_id}`, w.alive, `heartbeat ${fmtNum(w.last_heartbeat_s)} s ago` + (w.model_version ? ` · ${w.model_version}` : "") + (w.role !== "learner" ? ` · ${fmtInt(w.scored)} scored` : ""));
  }
  if (!s.components.workers.length) row("workers", false, "none seen");
  $("components").tBodies[0].innerHTML = comp.join("");
  $("alerts").innerHTML = alerts.map((a) => `<li class="firing">▲ ${esc(a.severity)}: ${esc(a.summary)}</li>`).join("") || `<li>no alert firing</li>`;
  $("events").innerHTML = (s.events || []).slice().reverse().map((e) =>
    `<li class="${esc(e.kind)}">${clock(e.ts)} ${esc(e.kind)}${e.evidence && e.evidence.type ? " (" + esc(e.evidence.type) + ")" : ""} · ${esc(e.model)} ${esc(e.version || "")}</li>`).join("") || `<li>no model event yet</li>`;
  drawScores(s);
}

// ---- series: time charts ----------------------------------------------------------------------
function mergeSeries(r) {
  window.dashboard.seriesUpdates++;
  for (const sample of r.samples) {
    if (state.lastT == null || sample.t > state.lastT) { state.samples.push(sample); state.lastT = sample.t; }
  }
  const cutoff = (state.lastT || 0) - SPAN_S - 5;
  while (state.samples.length && state.samples[0].t < cutoff) state.samples.shift();
  for (const e of r.events) state.events.set(e.id, e);
  for (const [id, e] of state.events) if (e.ts < cutoff) state.events.delete(id);
  drawTimeCharts();
}

function setupCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawTimeChart(id, lines, opts = {}) {
  const canvas = $(id);
  const { ctx, w, h } = setupCanvas(canvas);
  const L = 46, R = 8, T = 14, B = 18;
  const now = state.lastT || Date.now() / 1000;
  const first = state.samples.length ? state.samples[0].t : now;
  const span = Math.min(SPAN_S, Math.max(MIN_SPAN_S, Math.ceil((now - first) / 60) * 60));
  const t0 = now - span;
  let vmax = opts.min || 0;
  for (const ln of lines) for (const [t, v] of ln.points) if (t >= t0 && v != null && v > vmax) vmax = v;
  if (opts.target != null && opts.target > vmax && opts.target < vmax * 3) vmax = opts.target;
  const ymax = Math.min(opts.max || Infinity, niceMax(vmax * 1.05));
  const x = (t) => L + ((t - t0) / span) * (w - L - R);
  const y = (v) => h - B - (v / ymax) * (h - T - B);
  ctx.strokeStyle = COLORS.grid; ctx.fillStyle = COLORS.dim; ctx.lineWidth = 1;
  ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4, yy = Math.round(y(v)) + 0.5;
    ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(w - R, yy); ctx.stroke();
    ctx.fillText(opts.fmt ? opts.fmt(v) : String(+v.toFixed(2)), L - 4, yy);
  }
  ctx.textAlign = "center"; ctx.textBaseline = "alphabetic";
  const step = span > 300 ? 2 : 1;
  for (let m = 0; m <= span / 60; m += step) {
    ctx.textAlign = m === 0 ? "right" : m * 60 >= span ? "left" : "center";
    ctx.fillText(m === 0 ? "now" : `-${m} min`, x(now - m * 60), h - 4);
  }
  if (opts.target != null && opts.target <= ymax) {
    ctx.save(); ctx.setLineDash([4, 4]); ctx.strokeStyle = COLORS.dim;
    ctx.beginPath(); ctx.moveTo(L, y(opts.target)); ctx.lineTo(w - R, y(opts.target)); ctx.stroke(); ctx.restore();
  }
  // markers: drift, warning, promotion, rollback
  let markers = 0;
  ctx.textAlign = "left";
  for (const e of state.events.values()) {
    if (e.ts < t0) continue;
    const xx = Math.round(x(e.ts)) + 0.5, color = MARKER_COLORS[e.kind] || COLORS.dim;
    ctx.save(); ctx.strokeStyle = color; ctx.fillStyle = color; ctx.setLineDash([3, 3]);
    ctx.beginPath(); ctx.moveTo(xx, T - 4); ctx.lineTo(xx, h - B); ctx.stroke();
    const tag = `${e.kind[0].toUpperCase()}${e.version ? " " + e.version : ""}`;
    const right = xx + 3 + ctx.measureText(tag).width > w - R;
    ctx.textAlign = right ? "right" : "left";
    ctx.fillText(tag, right ? xx - 3 : xx + 3, T - 3);
    ctx.restore(); markers++;
  }
  let drawn = 0;
  for (const ln of lines) {
    ctx.strokeStyle = ln.color; ctx.lineWidth = ln.width || 1.6; ctx.beginPath();
    let pen = false;
    for (const [t, v] of ln.points) {
      if (t < t0 || v == null) { pen = false; continue; }
      if (pen) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
      pen = true; drawn++;
    }
    ctx.stroke();
  }
  canvas.dataset.points = String(drawn);
  canvas.dataset.markers = String(markers);
  window.dashboard.charts[id] = { points: drawn, markers, ymax };
}

function drawTimeCharts() {
  const S = state.samples;
  const pts = (f) => S.map((s) => [s.t, f(s)]);
  const target = state.status && state.status.criteria.criteria.find((c) => c.criterion === "p99_latency_ms");
  drawTimeChart("chart-throughput", [{ points: pts((s) => s.throughput), color: COLORS.blue, width: 2 }], { fmt: (v) => String(Math.round(v)) });
  drawTimeChart("chart-latency", [
    { points: pts((s) => s.p50), color: COLORS.blue },
    { points: pts((s) => s.p99), color: COLORS.red },
  ], { target: target ? target.target : null, fmt: (v) => String(+v.toFixed(1)) });
  drawTimeChart("chart-rates", [
    { points: pts((s) => s.fraud_rate), color: COLORS.blue, width: 2 },
    { points: pts((s) => s.decline_rate), color: COLORS.red },
    { points: pts((s) => s.review_rate), color: COLORS.amber },
  ], { fmt: (v) => (100 * v).toFixed(v < 0.1 ? 1 : 0) + "%", min: 0.01, max: 1 });
}

function drawScores(s) {
  const canvas = $("chart-scores");
  const { ctx, w, h } = setupCanvas(canvas);
  const counts = s.score_distribution.counts, n = counts.length;
  const L = 46, R = 8, T = 14, B = 18;
  const top = Math.max(1, ...counts);
  const lmax = Math.log10(1 + niceMax(top));
  const y = (c) => h - B - (Math.log10(1 + c) / lmax) * (h - T - B);
  const bw = (w - L - R) / n;
  ctx.strokeStyle = COLORS.grid; ctx.fillStyle = COLORS.dim; ctx.textAlign = "right"; ctx.textBaseline = "middle";
  for (let p = 1; p <= niceMax(top); p *= 10) {
    const yy = Math.round(y(p)) + 0.5;
    ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(w - R, yy); ctx.stroke();
    ctx.fillText(p >= 1000 ? p / 1000 + "k" : String(p), L - 4, yy);
  }
  let bars = 0;
  counts.forEach((c, i) => {
    if (!c) return;
    const lo = i / n;
    const champ = s.models.champion;
    const review = champ && champ.threshold != null ? champ.threshold : 0.5;
    ctx.fillStyle = lo >= 0.9 ? COLORS.red : lo >= review ? COLORS.amber : COLORS.blue;
    ctx.fillRect(L + i * bw + 1, y(c), bw - 2, h - B - y(c));
    bars++;
  });
  ctx.fillStyle = COLORS.dim; ctx.textAlign = "center"; ctx.textBaseline = "alphabetic";
  for (const v of [0, 0.25, 0.5, 0.75, 1]) ctx.fillText(String(v), L + v * (w - L - R), h - 4);
  const champ = s.models.champion;
  if (champ && champ.threshold != null) {
    const xx = L + champ.threshold * (w - L - R);
    ctx.save(); ctx.setLineDash([4, 4]); ctx.strokeStyle = COLORS.amber;
    ctx.beginPath(); ctx.moveTo(xx, T); ctx.lineTo(xx, h - B); ctx.stroke(); ctx.restore();
    ctx.fillStyle = COLORS.amber; ctx.textAlign = "left"; ctx.fillText(`threshold ${champ.threshold.toFixed(2)}`, xx + 4, T + 2);
  }
  canvas.dataset.points = String(bars);
  window.dashboard.charts["chart-scores"] = { points: bars };
}

// ---- lookup ----------------------------------------------------------------------------------
async function lookup(id) {
  const out = $("lookup-result");
  out.dataset.state = "loading";
  out.innerHTML = "looking up…";
  try {
    const r = await getJSON(`/predictions/${encodeURIComponent(id)}`);
    out.innerHTML = renderPrediction(r);
    out.dataset.state = "found";
  } catch (e) {
    out.innerHTML = `<span class="error">${esc(e.status === 404 ? e.message : "lookup failed: " + e.message)}</span>`;
    out.dataset.state = e.status === 404 ? "missing" : "error";
  }
}

function renderPrediction(r) {
  const s = r.scored;
  const head = s
    ? `<table><tbody>
        <tr><th>transaction</th><td id="lookup-tx">${esc(r.transaction_id)}</td></tr>
        <tr><th>score</th><td id="lookup-score">${Number(s.score).toFixed(4)}</td></tr>
        <tr><th>decision</th><td id="lookup-decision">${esc(s.decision)}</td></tr>
        <tr><th>model</th><td id="lookup-model">${esc(s.model_name)} ${esc(s.model_version)}</td></tr>
        <tr><th>card / terminal</th><td>${esc(s.card_id)} / ${esc(s.terminal_id || "–")}</td></tr>
        <tr><th>event time</th><td>${esc(s.event_time)}</td></tr>
        <tr><th>latency</th><td>${fmtNum(s.latency_ms, 2)} ms</td></tr>
        <tr><th>label</th><td id="lookup-label">${r.label ? (r.label.is_fraud ? "FRAUD" : "genuine") + ` (${esc(r.label.source || "")}, ${esc(r.label.reported_at || "")})` : "not known yet"}</td></tr>
      </tbody></table>`
    : `<p id="lookup-tx">${esc(r.transaction_id)}: features stored, no scored event kept</p>`;
  const reasons = s && s.reasons.length
    ? `<table><thead><tr><th>reason</th><th>value</th><th>contribution</th></tr></thead><tbody>` +
      s.reasons.map((x) => `<tr><td>${esc(x.feature)}</td><td>${x.value == null ? "–" : (+x.value).toFixed(3)}</td><td>${(+x.contribution).toFixed(3)}</td></tr>`).join("") + `</tbody></table>`
    : "<p>no reason recorded</p>";
  const feats = r.features || (s && s.features) || {};
  const ft = `<table id="lookup-features"><thead><tr><th>feature</th><th>value</th></tr></thead><tbody>` +
    Object.keys(feats).sort().map((k) => `<tr><td>${esc(k)}</td><td>${feats[k] == null ? "missing" : (+feats[k]).toFixed(4)}</td></tr>`).join("") + `</tbody></table>`;
  return `<div class="cols"><div>${head}</div><div>${reasons}</div><div style="max-height:240px;overflow:auto">${ft}</div></div>`;
}

$("lookup-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const id = $("lookup-id").value.trim();
  if (id) lookup(id);
});

every(1000, async () => renderStatus(await getJSON("/status")));
every(1000, async () => mergeSeries(await getJSON("/status/series" + (state.lastT != null ? `?since=${state.lastT}` : ""))));
window.addEventListener("resize", () => { drawTimeCharts(); if (state.status) drawScores(state.status); });
