/** The dashboard's HTML and CSS: static, no data in them; the script fetches the JSON API. */

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Moat admin</title>
<link rel="stylesheet" href="/dashboard/app.css">
<script src="/dashboard/app.js" defer></script>
</head>
<body>
<header>
  <h1>Moat</h1>
  <span id="status" role="status"></span>
  <button id="queues" type="button" hidden>Queues (bull-board)</button>
  <button id="logout" type="button" hidden>Sign out</button>
</header>

<section id="login">
  <h2>Sign in</h2>
  <form id="login-form">
    <label for="token">Admin API token</label>
    <input id="token" name="token" type="password" autocomplete="off" required>
    <button type="submit">Sign in</button>
  </form>
  <p id="login-error" class="error" hidden></p>
  <p class="hint">The token is kept in this tab only (sessionStorage) and sent as a bearer token.</p>
</section>

<main id="main" hidden>
  <section id="charts">
    <h2>Throughput and queue <span class="hint">(sampled from /metrics every 10 s since this page opened)</span></h2>
    <div class="charts">
      <figure><figcaption>Accepted per minute <b id="rate-in"></b></figcaption><svg id="chart-in" viewBox="0 0 300 60" preserveAspectRatio="none"></svg></figure>
      <figure><figcaption>Delivered per minute <b id="rate-out"></b></figcaption><svg id="chart-out" viewBox="0 0 300 60" preserveAspectRatio="none"></svg></figure>
      <figure><figcaption>Queued (waiting + deferred) <b id="queue-now"></b></figcaption><svg id="chart-queue" viewBox="0 0 300 60" preserveAspectRatio="none"></svg></figure>
    </div>
  </section>

  <section>
    <h2>Nodes</h2>
    <table id="nodes">
      <thead><tr><th>Node</th><th>Roles</th><th>Version</th><th>Node.js</th><th>Uptime</th><th>Last heartbeat</th><th>Sessions</th><th>Filter daemons</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section>
    <h2>Routes</h2>
    <table id="routes">
      <thead><tr><th>Route</th><th>Domains</th><th>State</th><th>Waiting</th><th>Active</th><th>Deferred</th><th>Held</th><th>Failed</th><th>Oldest</th><th></th></tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section>
    <h2>Oldest deferred messages</h2>
    <table id="deferred">
      <thead><tr><th>Message</th><th>Route</th><th>Sender</th><th>Recipients</th><th>Age</th><th>Attempts</th><th>Last reply</th><th>Next attempt</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>

  <section>
    <h2>Message tracking</h2>
    <form id="track-form">
      <input id="track-query" name="q" placeholder="message id, address, or @domain" required>
      <button type="submit">Search</button>
    </form>
    <p id="track-error" class="error" hidden></p>
    <table id="events">
      <thead><tr><th>Time</th><th>Event</th><th>Message</th><th>Route</th><th>Sender</th><th>Recipients</th><th>Host</th><th>Reply</th><th>Filters</th></tr></thead>
      <tbody></tbody>
    </table>
  </section>
</main>
</body>
</html>
`;

export const DASHBOARD_CSS = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2430; background: #f6f7f9; }
header { display: flex; align-items: center; gap: 1rem; padding: .6rem 1.2rem; background: #1d2430; color: #fff; }
header h1 { font-size: 1.2rem; margin: 0; }
#status { flex: 1; font-size: .9rem; opacity: .85; }
section { margin: 1rem 1.2rem; padding: .8rem 1rem; background: #fff; border: 1px solid #dde1e6; border-radius: 6px; }
h2 { font-size: 1rem; margin: 0 0 .6rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eceef1; vertical-align: top; }
th { font-weight: 600; font-size: .85rem; color: #556; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.empty { color: #889; font-style: italic; }
.paused { color: #a15c00; font-weight: 600; }
.running { color: #1f7a3a; }
.error { color: #b00020; }
.hint { color: #667; font-size: .85rem; }
button { cursor: pointer; }
input { padding: .25rem .4rem; min-width: 20rem; }
.charts { display: flex; gap: 1rem; flex-wrap: wrap; }
figure { margin: 0; flex: 1; min-width: 14rem; }
figcaption { font-size: .85rem; color: #556; margin-bottom: .2rem; }
svg { width: 100%; height: 60px; background: #f6f7f9; border: 1px solid #eceef1; }
svg polyline { fill: none; stroke: #2d6cdf; stroke-width: 1.5; vector-effect: non-scaling-stroke; }
a.message { color: #2d6cdf; cursor: pointer; text-decoration: underline; }
.down { color: #b00020; font-weight: 600; }
`;
