/* global document, window, EventSource, Image */
// The console page: one server-sent event stream (`snapshot` events) renders three sections.
// Plain JavaScript, no framework and no CDN: plants run offline.
'use strict';

const $ = (id) => document.getElementById(id);
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const time = (ms) => new Date(ms).toLocaleTimeString([], { hour12: false });
const num = (v, digits = 1) => (v === undefined || v === null ? '–' : Number(v).toFixed(digits));

// Stable colour per label: the same defect kind looks the same on every camera.
const PALETTE = ['#f85149', '#d29922', '#a371f7', '#ff7b72', '#db61a2', '#f0883e', '#e3b341', '#bc8cff'];
function labelColour(label) {
  let h = 0;
  for (const ch of label) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

let events = 0;
let lastAt = 0;
const live = $('live');

function setLive(state, text) {
  live.dataset.state = state;
  live.textContent = text;
}

// ---- lines & cameras -------------------------------------------------------------------------

function sparkline(buckets) {
  const w = 240;
  const h = 48;
  if (buckets.length === 0) return '<svg viewBox="0 0 240 48"></svg>';
  const step = buckets.length > 1 ? w / (buckets.length - 1) : w;
  const pts = buckets.map((b, i) => `${(i * step).toFixed(1)},${(h - 2 - (b.frames ? b.defects / b.frames : 0) * (h - 4)).toFixed(1)}`);
  return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="none"><polyline class="rate" points="0,${h} ${pts.join(' ')} ${w},${h}"/></svg>`;
}

function renderLines(lines) {
  $('line-rates').innerHTML = lines.length === 0
    ? '<p class="empty">no inspections yet</p>'
    : lines.map((l) => {
        const last = l.buckets[l.buckets.length - 1];
        const now = last && last.frames ? (100 * last.defects) / last.frames : 0;
        return `<div class="card" style="min-width:260px" data-testid="line-rate" data-line-id="${esc(l.lineId)}" data-frames="${l.frames}" data-defects="${l.defects}">
          <h4><span>${esc(l.lineId)}</span><span class="${now > 0 ? 'bad' : 'ok'}">${now.toFixed(1)} % now</span></h4>
          ${sparkline(l.buckets)}
          <div class="muted">${l.defects} defects of ${l.frames} frames (${l.frames ? ((100 * l.defects) / l.frames).toFixed(1) : '0.0'} %)</div></div>`;
      }).join('');
}

const cameraCards = new Map();

function frameSlot(kind) {
  const div = document.createElement('div');
  div.className = 'frame';
  const canvas = document.createElement('canvas');
  canvas.dataset.testid = 'frame-canvas';
  canvas.dataset.kind = kind;
  canvas.width = 256;
  canvas.height = 192;
  const cap = document.createElement('div');
  cap.className = 'cap';
  cap.textContent = kind === 'latest' ? 'waiting for a frame' : 'no defect yet';
  const labels = document.createElement('div');
  div.append(canvas, cap, labels);
  return { div, canvas, cap, labels, frameId: undefined };
}

/** Draws a frame and its defect overlay; `data-defect-boxes` counts the boxes drawn. */
function drawFrame(slot, f) {
  if (!f || slot.frameId === f.frameId + ':' + f.inspected) return;
  slot.frameId = f.frameId + ':' + f.inspected;
  const c = slot.canvas;
  c.dataset.frameId = f.frameId;
  c.dataset.cameraId = f.cameraId;
  c.dataset.verdict = f.verdict || 'pending';
  c.dataset.drawn = 'false';
  c.dataset.defectBoxes = '0';
  const verdict = f.verdict === 'defect' ? `<span class="bad">${esc(f.label)} ${num(f.confidence, 2)}</span>` : f.verdict === 'ok' ? '<span class="ok">ok</span>' : 'inspecting…';
  slot.cap.innerHTML = `${time(f.capturedAt)} · ${verdict} · <span title="${esc(f.frameId)}">${esc(f.frameId)}</span>`;
  slot.labels.innerHTML = f.boxes.map((b) => `<span class="chip" data-testid="overlay-label" data-frame-id="${esc(f.frameId)}" style="color:${labelColour(b.label)}">${esc(b.label)} ${num(b.confidence, 2)}</span>`).join('');
  const img = new Image();
  img.onload = () => {
    if (slot.frameId !== f.frameId + ':' + f.inspected) return; // a newer frame came meanwhile
    c.width = f.width;
    c.height = f.height;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const lw = Math.max(2, Math.round(f.width / 160));
    ctx.lineWidth = lw;
    ctx.font = `${Math.max(10, Math.round(f.width / 22))}px sans-serif`;
    ctx.textBaseline = 'top';
    for (const b of f.boxes) {
      const colour = labelColour(b.label);
      ctx.strokeStyle = colour;
      ctx.strokeRect(b.x + lw / 2, b.y + lw / 2, b.width - lw, b.height - lw);
      const text = `${b.label} ${Math.round(b.confidence * 100)}%`;
      const tw = ctx.measureText(text).width + 4;
      ctx.fillStyle = colour;
      ctx.fillRect(b.x, b.y, Math.min(tw, f.width - b.x), parseInt(ctx.font, 10) + 4);
      ctx.fillStyle = '#000';
      ctx.fillText(text, b.x + 2, b.y + 2);
    }
    c.dataset.defectBoxes = String(f.boxes.length);
    c.dataset.drawn = 'true';
  };
  img.onerror = () => {
    c.dataset.drawn = 'gone'; // the frame left the console's memory before the page asked for it
  };
  img.src = `/api/frames/${encodeURIComponent(f.frameId)}.png`;
}

function renderCameras(cameras) {
  const grid = $('cameras');
  if (cameras.length === 0 && cameraCards.size === 0) {
    grid.innerHTML = '<p class="empty">no frames yet</p>';
    return;
  }
  const seen = new Set();
  for (const cam of cameras) {
    seen.add(cam.cameraId);
    let card = cameraCards.get(cam.cameraId);
    if (!card) {
      if (cameraCards.size === 0) grid.innerHTML = '';
      const el = document.createElement('div');
      el.className = 'card';
      el.dataset.testid = 'camera';
      el.dataset.cameraId = cam.cameraId;
      const h = document.createElement('h4');
      const frames = document.createElement('div');
      frames.className = 'frames';
      const latest = frameSlot('latest');
      const defect = frameSlot('last-defect');
      frames.append(latest.div, defect.div);
      el.append(h, frames);
      grid.append(el);
      card = { el, h, latest, defect };
      cameraCards.set(cam.cameraId, card);
    }
    card.h.innerHTML = `<span>${esc(cam.cameraId)}</span><span class="muted">latest · last defect</span>`;
    drawFrame(card.latest, cam.frames.find((f) => f.inspected) || cam.frames[0]);
    drawFrame(card.defect, cam.lastDefect);
  }
  for (const [id, card] of cameraCards) {
    if (!seen.has(id)) {
      card.el.remove();
      cameraCards.delete(id);
    }
  }
}

function renderDefects(defects) {
  $('defects').innerHTML = defects.length === 0
    ? '<tr><td colspan="7" class="empty">no defects yet</td></tr>'
    : defects.slice(0, 20).map((d) => `<tr data-testid="defect-row" data-frame-id="${esc(d.frameId)}">
        <td>${time(d.capturedAt)}</td><td>${esc(d.cameraId)}</td>
        <td><span class="chip" style="color:${labelColour(d.label)}">${esc(d.label)}</span></td><td>${num(d.confidence, 2)}</td>
        <td>${d.tiles.map((t) => `${esc(t.label)} ${num(t.confidence, 2)}`).join(', ')}</td><td>${esc(d.model)}</td><td>${d.latencyMs} ms</td></tr>`).join('');
}

// ---- assets ----------------------------------------------------------------------------------

function scoreChart(a) {
  const w = 300;
  const h = 90;
  const pts = a.points;
  const max = Math.max(a.threshold * 1.5, ...pts.map((p) => p.score)) || 1;
  const y = (v) => (h - 4 - (v / max) * (h - 8)).toFixed(1);
  const step = pts.length > 1 ? w / (pts.length - 1) : w;
  const line = pts.map((p, i) => `${(i * step).toFixed(1)},${y(p.score)}`).join(' ');
  const hot = pts.map((p, i) => (p.anomalous ? `<circle class="hot" cx="${(i * step).toFixed(1)}" cy="${y(p.score)}" r="2.5"/>` : '')).join('');
  return `<svg viewBox="0 0 ${w} ${h}" data-testid="score-chart" data-asset-id="${esc(a.assetId)}" data-threshold="${a.threshold}">
    <line class="thr" data-testid="threshold-line" x1="0" x2="${w}" y1="${y(a.threshold)}" y2="${y(a.threshold)}"/>
    <polyline class="score" points="${line}"/>${hot}</svg>`;
}

function renderScores(assets, openByAsset) {
  $('scores').innerHTML = assets.length === 0
    ? '<p class="empty">no anomaly scores yet</p>'
    : assets.map((a) => {
        const last = a.points[a.points.length - 1];
        const cls = openByAsset.has(a.assetId) ? 'bad' : 'ok';
        return `<div class="card" data-testid="asset" data-asset-id="${esc(a.assetId)}">
          <h4><span class="${cls}">${esc(a.assetId)}</span><span class="muted">score ${num(last && last.score, 2)} / threshold ${num(a.threshold, 2)}</span></h4>
          ${scoreChart(a)}
          <div class="muted">${a.anomalous} of ${a.windows} windows anomalous · ${esc(a.model)}</div></div>`;
      }).join('');
}

const channels = (list) => list.map((c) => `<span class="chip" data-testid="alert-channel">${esc(c.channel)} ${num(c.contribution, 2)}</span>`).join('');

function renderAlerts(alerts) {
  $('alerts-open').innerHTML = alerts.open.length === 0
    ? '<p class="empty">no open alerts</p>'
    : alerts.open.map((a) => `<div class="card alert" data-testid="alert-open" data-alert-id="${esc(a.alertId)}" data-asset-id="${esc(a.assetId)}">
        <h4><span class="bad">${esc(a.assetId)}</span><span class="muted">since ${time(a.at)}</span></h4>
        <div>score ${num(a.score, 2)} over threshold ${num(a.threshold, 2)}</div>
        <div>top channels: ${channels(a.topChannels)}</div></div>`).join('');
  $('alerts-history').innerHTML = alerts.history.length === 0
    ? '<tr><td colspan="6" class="empty">no alerts yet</td></tr>'
    : alerts.history.map((a) => `<tr data-testid="alert-history-row" data-alert-id="${esc(a.alertId)}" data-state="${a.state}">
        <td>${time(a.at)}</td><td>${esc(a.assetId)}</td><td class="${a.state === 'raised' ? 'bad' : 'ok'}">${a.state}</td>
        <td>${num(a.score, 2)} / ${num(a.threshold, 2)}</td><td>${channels(a.topChannels)}</td><td class="muted">${esc(a.alertId)}</td></tr>`).join('');
}

// ---- fleet -----------------------------------------------------------------------------------

function renderFleet(s) {
  $('fleet-rows').innerHTML = s.fleet.length === 0
    ? '<tr><td colspan="9" class="empty">no workers configured (CONSOLE_WORKERS)</td></tr>'
    : s.fleet.map((w) => `<tr data-testid="fleet-row" data-worker="${esc(w.name)}" data-state="${esc(w.state)}">
        <td title="${esc(w.url)}">${esc(w.name)} <span class="muted">${esc(w.workerId || '')}</span></td>
        <td class="${w.ready ? 'ok' : 'bad'}">${esc(w.state)}${w.ready ? ' · ready' : ''}</td>
        <td>${num(w.consumedPerSec)}</td><td>${num(w.producedPerSec)}</td><td>${w.lag === undefined ? '–' : w.lag}</td>
        <td>${w.p99Ms === undefined ? '–' : `${w.p99Ms} ms`}</td><td>${w.deadLettered}</td>
        <td>${w.models.map((m) => `<span class="chip" data-testid="fleet-model">${esc(m.model)}@${esc(m.version)} · ${esc(m.engine)}</span>`).join('')}</td>
        <td class="bad">${esc(w.error || '')}</td></tr>`).join('');
  $('andon').innerHTML = s.andon.deliveries.length === 0
    ? '<tr><td colspan="4" class="empty">no deliveries yet</td></tr>'
    : s.andon.deliveries.map((d) => `<tr data-testid="andon-row" data-event-id="${esc(d.eventId)}"><td>${time(d.receivedAt)}</td><td>${d.kind}</td><td class="muted">${esc(d.eventId)}</td><td>${esc(d.summary)}</td></tr>`).join('');
  const mb = (s.memory.frameBytes / 1048576).toFixed(1);
  $('memory').textContent = `console group ${s.kafka.groupId} (${s.kafka.state}) · ${s.memory.frames} frames held (${mb} MiB, ${s.memory.evictedForBytes} evicted for the byte budget)`;
}

function render(s) {
  const c = s.counters;
  $('counters').innerHTML = `<span data-testid="count-inspections" data-value="${c.inspections}">${c.inspections} inspections</span> · ${s.defectsTotal} defects · ${c.scores} scores · ${s.alerts.open.length} open alerts${c.bad ? ` · <span class="bad">${c.bad} bad records</span>` : ''}`;
  renderLines(s.lines);
  renderCameras(s.cameras);
  renderDefects(s.defects);
  const openByAsset = new Set(s.alerts.open.map((a) => a.assetId));
  renderScores(s.assets, openByAsset);
  renderAlerts(s.alerts);
  renderFleet(s);
}

function connect() {
  const source = new EventSource('/api/events');
  source.addEventListener('snapshot', (e) => {
    events += 1;
    lastAt = Date.now();
    live.dataset.events = String(events);
    setLive('live', `live · ${time(lastAt)}`);
    render(JSON.parse(e.data));
  });
  source.addEventListener('bye', () => {
    setLive('stopped', 'console stopped');
    source.close();
  });
  source.onerror = () => setLive('error', 'connection lost, retrying…');
}

// Stale when nothing came for a while: the fleet may be idle, or the console cut off.
window.setInterval(() => {
  if (live.dataset.state === 'live' && Date.now() - lastAt > 20000) setLive('stale', `no update since ${time(lastAt)}`);
}, 5000);

connect();
