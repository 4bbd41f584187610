/**
 * The dashboard's browser script (plain JavaScript, served as /dashboard/app.js). Every value
 * from the API goes into the page through textContent, never as HTML.
 */
export const DASHBOARD_JS = `'use strict';
const TOKEN_KEY = 'moat.adminToken';
const $ = (id) => document.getElementById(id);

function status(text) { $('status').textContent = text; }

function showLogin(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $('main').hidden = true;
  $('logout').hidden = true;
  $('queues').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message || '';
}

async function api(method, path, body) {
  const headers = { authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY) };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) {
    showLogin(data.message || 'The token was refused.');
    throw new Error('unauthorized');
  }
  if (!res.ok) throw new Error(data.message || res.statusText);
  return data;
}

function cell(row, text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '' : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(table, items, columns, render) {
  const body = table.tBodies[0];
  body.replaceChildren();
  if (items.length === 0) {
    const row = body.insertRow();
    const td = cell(row, 'none', 'empty');
    td.colSpan = columns;
    return;
  }
  for (const item of items) render(body.insertRow(), item);
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}

function when(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\\.\\d+Z$/, 'Z') : ''; }

// /metrics (public text) sampled at every refresh: a history since the page opened.
const samples = [];
function metricSum(text, name, match) {
  let sum = 0;
  for (const line of text.split('\\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (match && !match.test(line)) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

function drawChart(svg, values) {
  svg.replaceChildren();
  if (values.length < 2) return;
  const max = Math.max(1, ...values);
  const points = values.map((v, i) => (i / (values.length - 1)) * 300 + ',' + (58 - (v / max) * 56)).join(' ');
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', points);
  svg.appendChild(line);
}

async function loadMetrics() {
  const res = await fetch('/metrics');
  const text = await res.text();
  samples.push({
    at: Date.now(),
    accepted: metricSum(text, 'moat_messages_accepted_total'),
    delivered: metricSum(text, 'moat_deliveries_total', /result="delivered"/),
    queued: metricSum(text, 'moat_queue_jobs', /state="(waiting|deferred)"/),
  });
  if (samples.length > 90) samples.shift();
  const perMinute = (key) =>
    samples.slice(1).map((s, i) => Math.max(0, ((s[key] - samples[i][key]) / Math.max(1, s.at - samples[i].at)) * 60000));
  const inRates = perMinute('accepted');
  const outRates = perMinute('delivered');
  drawChart($('chart-in'), inRates);
  drawChart($('chart-out'), outRates);
  drawChart($('chart-queue'), samples.map((s) => s.queued));
  $('rate-in').textContent = inRates.length ? Math.round(inRates[inRates.length - 1]) + '/min' : '';
  $('rate-out').textContent = outRates.length ? Math.round(outRates[outRates.length - 1]) + '/min' : '';
  $('queue-now').textContent = String(samples[samples.length - 1].queued);
  $('charts').dataset.samples = String(samples.length);
}

async function loadNodes() {
  const { nodes } = await api('GET', '/nodes');
  const now = Date.now();
  fill($('nodes'), nodes, 8, (row, n) => {
    row.dataset.node = n.id;
    cell(row, n.id);
    cell(row, n.roles.join(', '));
    cell(row, n.version);
    cell(row, n.nodeVersion || '');
    cell(row, age(n.uptimeSeconds));
    cell(row, n.lastSeen ? age((now - n.lastSeen) / 1000) + ' ago' : '');
    cell(row, n.stats.sessions === undefined ? '' : n.stats.sessions, 'num');
    const daemons = Object.entries(n.stats).filter(([k]) => k.startsWith('filterUp:'));
    const td = cell(row, daemons.map(([k, v]) => k.slice(9) + (v ? ' up' : ' DOWN')).join(', '));
    if (daemons.some(([, v]) => !v)) td.className = 'down';
  });
}

function filterSummary(filters) {
  return (filters || [])
    .map((f) => {
      const r = f.result || {};
      const detail = ['signature', 'action', 'score', 'spf', 'dkim', 'dmarc', 'error']
        .filter((k) => r[k] !== undefined && typeof r[k] !== 'object')
        .map((k) => k + '=' + r[k]);
      return [f.filter, f.verdict].concat(detail).join(' ');
    })
    .join('; ');
}

async function loadRoutes() {
  const { routes } = await api('GET', '/routes');
  fill($('routes'), routes, 10, (row, r) => {
    row.dataset.route = r.routeId;
    cell(row, r.routeId);
    cell(row, r.domains.join(', '));
    cell(row, r.paused ? 'paused' : 'running', r.paused ? 'paused state' : 'running state');
    for (const k of ['waiting', 'active', 'deferred', 'held', 'failed']) cell(row, r.counts[k], 'num');
    cell(row, age(r.oldestAgeSeconds));
    const td = cell(row, '');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = r.paused ? 'Resume' : 'Pause';
    button.className = r.paused ? 'resume' : 'pause';
    button.addEventListener('click', () => toggle(r.routeId, r.paused ? 'resume' : 'pause', button));
    td.appendChild(button);
  });
}

async function toggle(routeId, action, button) {
  button.disabled = true;
  try {
    await api('POST', '/routes/' + encodeURIComponent(routeId) + '/' + action);
    status('Route ' + routeId + ' ' + (action === 'pause' ? 'paused' : 'resumed'));
  } catch (err) {
    status('Could not ' + action + ' ' + routeId + ': ' + err.message);
  }
  await refresh();
}

async function loadDeferred() {
  const { jobs } = await api('GET', '/queue?state=deferred&order=oldest&limit=20');
  const now = Date.now();
  fill($('deferred'), jobs, 8, (row, j) => {
    cell(row, j.messageId);
    cell(row, j.routeId);
    cell(row, j.sender || '<>');
    cell(row, j.recipients.join(', '));
    cell(row, age((now - j.queuedAt) / 1000));
    cell(row, j.attempts, 'num');
    cell(row, j.lastReply ? j.lastReply.code + ' ' + j.lastReply.text + (j.lastReply.host ? ' (' + j.lastReply.host + ')' : '') : '');
    cell(row, when(j.nextAttemptAt));
  });
}

function trackingQuery(q) {
  q = q.trim();
  if (/^[0-9A-Za-z]{20}$/.test(q)) return 'messageId=' + encodeURIComponent(q);
  if (q.startsWith('@')) return 'recipient=' + encodeURIComponent(q);
  if (q.includes('@')) return 'address=' + encodeURIComponent(q);
  return 'messageId=' + encodeURIComponent(q);
}

async function track(event) {
  event.preventDefault();
  $('track-error').hidden = true;
  try {
    const { events } = await api('GET', '/tracking?limit=100&' + trackingQuery($('track-query').value));
    fill($('events'), events, 9, (row, e) => {
      cell(row, when(e.time));
      cell(row, e.type);
      // A message id opens that message's timeline.
      const id = cell(row, '');
      const link = document.createElement('a');
      link.className = 'message';
      link.textContent = e.messageId;
      link.addEventListener('click', () => {
        $('track-query').value = e.messageId;
        $('track-form').requestSubmit();
      });
      id.appendChild(link);
      cell(row, e.routeId);
      cell(row, e.sender === '' ? '<>' : e.sender);
      cell(row, (e.recipients || []).join(', '));
      cell(row, e.host);
      cell(row, e.reply);
      cell(row, filterSummary(e.filters));
    });
  } catch (err) {
    if (err.message === 'unauthorized') return;
    $('track-error').textContent = err.message;
    $('track-error').hidden = false;
  }
}

async function refresh() {
  try {
    await Promise.all([loadRoutes(), loadDeferred(), loadNodes(), loadMetrics()]);
    $('main').dataset.loaded = String(Date.now());
    if (!$('status').textContent) status('Updated ' + new Date().toLocaleTimeString());
  } catch (err) {
    if (err.message !== 'unauthorized') status('Update failed: ' + err.message);
  }
}

async function start() {
  $('login').hidden = true;
  $('main').hidden = false;
  $('logout').hidden = false;
  $('queues').hidden = false;
  await refresh();
}

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    try {
      await api('GET', '/routes');
      await start();
    } catch (err) {
      if (err.message !== 'unauthorized') showLogin(err.message);
    }
  });
  $('logout').addEventListener('click', () => showLogin(''));
  // bull-board's page cannot send the bearer token: it gets it as a cookie for its path.
  $('queues').addEventListener('click', async () => {
    try {
      await api('POST', '/bull-board/session');
      window.location.assign('/bull-board');
    } catch (err) {
      if (err.message !== 'unauthorized') status('Could not open bull-board: ' + err.message);
    }
  });
  $('track-form').addEventListener('submit', track);
  setInterval(() => { if (!$('main').hidden) refresh(); }, 10000);
  if (sessionStorage.getItem(TOKEN_KEY)) start(); else showLogin('');
});
`;
