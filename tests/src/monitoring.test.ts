/**
 * infra/monitoring/ is tested with the real tools and a real Moat: `promtool check rules` and
 * `promtool test rules` (Debian's `prometheus` package) on the alert rules and their unit tests,
 * and a broken copy that must fail; every metric and label name that the rules and the Grafana
 * dashboard use must be on a real /metrics: one `moat edge`, one `moat worker` and one
 * `moat admin` process on a real Redis, every counter of METRICS incremented, a clamd that does
 * not answer and a paused route. That scrape then goes through the rules in promtool, so the
 * alerts are seen to fire (and to stay quiet) on what Moat really exports.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type CounterName,
  Counters,
  connect,
  type HistogramName,
  keysFor,
  METRICS,
  whenReady,
} from '@moat/spool';
import { freePort, type RedisServer, startRedis } from '@moat/testkit';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, expect, test } from 'vitest';
import YAML from 'yaml';
import { type MoatProcess, startMoat } from './moat-process.js';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

const ROOT = path.resolve(import.meta.dirname, '../..');
const MONITORING = path.join(ROOT, 'infra/monitoring');
const RULES = path.join(MONITORING, 'moat-alerts.yaml');
const RULE_TESTS = path.join(MONITORING, 'moat-alerts.test.yaml');
const DASHBOARD = path.join(MONITORING, 'grafana-moat.json');
const ADMIN_TOKEN = 'monitoring-test-admin-token-0123456789';

interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleFile {
  readonly groups: readonly { readonly name: string; readonly rules: readonly Rule[] }[];
}
interface Target {
  readonly refId?: string;
  readonly expr?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly gridPos: { readonly x: number; readonly y: number; readonly w: number; readonly h: number };
  readonly targets?: readonly Target[];
}
interface Variable {
  readonly type: string;
  readonly name: string;
  readonly query?: string | { readonly query?: string };
  readonly definition?: string;
}
interface Dashboard {
  readonly schemaVersion: number;
  readonly uid: string;
  readonly title: string;
  readonly panels: readonly Panel[];
  readonly templating: { readonly list: readonly Variable[] };
}

interface Run {
  readonly code: number;
  readonly output: string;
}

/** A command to its end; its exit code and everything it printed. */
function run(command: string, args: readonly string[], cwd = MONITORING): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { cwd, timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        return reject(
          new Error(`${command} not found: install the Debian package \`prometheus\` (it ships promtool)`),
        );
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 128;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

const promtool = (...args: string[]) => run('promtool', args);

async function rules(): Promise<RuleFile> {
  return YAML.parse(await readFile(RULES, 'utf8')) as RuleFile;
}

function allRules(file: RuleFile): Rule[] {
  return file.groups.flatMap((g) => g.rules);
}

async function dashboard(): Promise<Dashboard> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
}

/** Grafana's variables replaced by what they stand for, so that the text is plain PromQL. */
function withoutVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)/g, '5m').replace(/\$\{?\w+\}?/g, '.*');
}

/** Every PromQL expression of the dashboard: panel targets and variable queries. */
function dashboardExpressions(d: Dashboard): { where: string; expr: string }[] {
  const out: { where: string; expr: string }[] = [];
  for (const panel of d.panels)
    for (const t of panel.targets ?? [])
      if (t.expr !== undefined)
        out.push({ where: `panel ${panel.id} "${panel.title}" ${t.refId}`, expr: t.expr });
  return out;
}

/** label_values(metric, label) of the dashboard's query variables. */
function variableQueries(d: Dashboard): { where: string; metric: string; label: string }[] {
  return d.templating.list
    .filter((v) => v.type === 'query')
    .map((v) => {
      const text = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
      const m = /^label_values\(\s*(\w+)\s*,\s*(\w+)\s*\)$/.exec(text.trim());
      if (!m) throw new Error(`variable ${v.name}: expected label_values(metric, label), got "${text}"`);
      return { where: `variable ${v.name}`, metric: m[1] as string, label: m[2] as string };
    });
}

/** One scrape: each series name with the label names its samples carry, and each family's type. */
interface Exposition {
  readonly series: Map<string, Set<string>>;
  readonly types: Map<string, string>;
  readonly samples: { name: string; labels: Record<string, string>; value: number }[];
}

function parseExposition(text: string): Exposition {
  const series = new Map<string, Set<string>>();
  const types = new Map<string, string>();
  const samples: Exposition['samples'] = [];
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1] as string, type[2] as string);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1] as string] = JSON.parse(`"${l[2]}"`) as string;
    const name = m[1] as string;
    const names = series.get(name) ?? new Set<string>();
    for (const label of Object.keys(labels)) names.add(label);
    series.set(name, names);
    samples.push({ name, labels, value: Number(m[3]) });
  }
  return { series, types, samples };
}

/** What one PromQL expression refers to, from Prometheus' own grammar (lezer-promql). */
interface References {
  readonly errors: string[];
  /** Selectors: metric name and the label names it matches on. */
  readonly selectors: { metric: string; labels: string[] }[];
  /** by/without/on/ignoring labels, with the metrics selected under them. */
  readonly groupings: { labels: string[]; metrics: string[] }[];
}

function references(expr: string): References {
  const tree = parser.parse(expr);
  const errors: string[] = [];
  tree.iterate({
    enter: (n) => {
      if (n.type.isError) errors.push(`syntax error at ${n.from}: "${expr.slice(n.from, n.from + 20)}"`);
    },
  });
  const text = (n: SyntaxNode) => expr.slice(n.from, n.to);
  const selectorsUnder = (node: SyntaxNode) => {
    const found: { metric: string; labels: string[] }[] = [];
    const cursor = node.cursor();
    const end = node.to;
    do {
      if (cursor.from >= end) break;
      if (cursor.name !== 'VectorSelector') continue;
      const selector = cursor.node;
      const name = selector.getChild('Identifier');
      if (!name) {
        errors.push(`a selector without a metric name: ${text(selector)}`);
        continue;
      }
      const labels = selector
        .getChild('LabelMatchers')
        ?.getChildren('UnquotedLabelMatcher')
        .map((m) => text(m.getChild('LabelName') as SyntaxNode));
      found.push({ metric: text(name), labels: labels ?? [] });
    } while (cursor.next());
    return found;
  };
  const groupings: References['groupings'] = [];
  tree.iterate({
    enter: (n) => {
      if (n.name !== 'GroupingLabels') return;
      // by/without: the aggregation's body; on/ignoring/group_left: both sides of the operator.
      const owner = n.node.parent?.parent;
      if (!owner) return;
      const labels = n.node.getChildren('LabelName').map(text);
      const scope = owner.name === 'AggregateExpr' ? (owner.getChild('FunctionCallBody') ?? owner) : owner;
      groupings.push({ labels, metrics: selectorsUnder(scope).map((s) => s.metric) });
    },
  });
  return { errors, selectors: selectorsUnder(tree.topNode), groupings };
}

/** The labels a recording rule's series carry: those its outermost aggregation keeps. */
function recordedLabels(expr: string): string[] {
  const tree = parser.parse(expr);
  let node: SyntaxNode | null = tree.topNode.firstChild;
  while (node && node.name === 'ParenExpr') node = node.getChild('FunctionCallBody') ?? node.firstChild;
  if (node?.name === 'AggregateExpr') {
    const by = node.getChild('AggregateModifier');
    if (by?.getChild('By'))
      return (by.getChild('GroupingLabels')?.getChildren('LabelName') ?? []).map((l) =>
        expr.slice(l.from, l.to),
      );
  }
  return [];
}

// ---------------------------------------------------------------------------------------------
// A real Moat: edge, worker and admin processes on one Redis, scraped once.

const SAMPLE_LABELS: Record<string, string> = {
  reason: 'relay-denied',
  result: 'delivered',
  filter: 'clamav',
  verdict: 'accept',
  domain: 'example.com',
};

let dir: string;
let redis: RedisServer;
let route: string;
const processes: MoatProcess[] = [];
let scrape: Exposition;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-monitoring-'));
  redis = await startRedis({ appendonly: false, maxmemory: '256mb' });
  const [smtpPort, adminPort, deadClamd, deadRoute] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  route = `[127.0.0.1]:${deadRoute}`;
  const config = {
    hostname: 'relay.test',
    dataDir: dir,
    redis: { url: redis.url, prefix: 'mon' },
    smtp: { listen: [`127.0.0.1:${smtpPort}`] },
    inbound: { domains: { 'example.com': route } },
    // Nothing listens there: the edge's monitor finds clamd down (moat_filter_up 0).
    filters: { clamav: { address: `127.0.0.1:${deadClamd}` } },
    admin: {
      listen: `127.0.0.1:${adminPort}`,
      tokens: [{ name: 'ops', token: '${MOAT_ADMIN_TOKEN}', scope: 'admin' }],
    },
  };
  const env = { MOAT_ADMIN_TOKEN: ADMIN_TOKEN };
  const started = await Promise.all(
    ['edge', 'worker', 'admin'].map((role) => startMoat(role, config, dir, role, env)),
  );
  processes.push(...started);
  await Promise.all(started.map((p) => p.waitForEvent('moat.ready')));

  // Every cluster-wide counter, through the same Counters the roles increment.
  const connection = connect({ url: redis.url }, 'producer');
  await whenReady(connection);
  const counters = new Counters(connection, keysFor('mon'));
  for (const [key, def] of Object.entries(METRICS)) {
    const labels = Object.fromEntries(def.labels.map((l) => [l, l === 'route' ? route : SAMPLE_LABELS[l]]));
    if ('buckets' in def) counters.observe(key as HistogramName, labels as Record<string, string>, 0.5);
    else counters.inc(key as CounterName, labels as Record<string, string>);
  }
  await counters.flush();
  connection.disconnect();

  const admin = `http://127.0.0.1:${adminPort}`;
  const paused = await fetch(`${admin}/routes/${encodeURIComponent(route)}/pause`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    signal: AbortSignal.timeout(10_000),
  });
  expect(paused.status).toBe(200);

  // A node's first heartbeat may miss its Redis connection (the next one is 5 s later): scrape
  // until all three are listed.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const response = await fetch(`${admin}/metrics`, { signal: AbortSignal.timeout(10_000) });
    expect(response.status).toBe(200);
    scrape = parseExposition(await response.text());
    const nodes = scrape.samples.filter((s) => s.name === 'moat_node_up').length;
    if (nodes === 3 || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 250));
  }
});

afterAll(async () => {
  for (const p of processes) await p.stop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

test('moat-alerts.yaml passes `promtool check rules`; every alert has a severity, a summary and a description', async () => {
  const result = await promtool('check', 'rules', RULES);
  expect(result.output).toContain('SUCCESS');
  expect(result.code, result.output).toBe(0);
  const all = allRules(await rules());
  expect(result.output).toContain(`${all.length} rules found`);
  const alerts = all.filter((r) => r.alert);
  expect(alerts.length).toBeGreaterThanOrEqual(10);
  for (const alert of alerts) {
    expect(['critical', 'warning', 'info'], alert.alert).toContain(alert.labels?.severity);
    expect(alert.annotations?.summary, alert.alert).toBeTruthy();
    expect(alert.annotations?.description, alert.alert).toBeTruthy();
  }
  // The ones the operations guide asks for, by name.
  for (const name of [
    'MoatQueueGrowing',
    'MoatRoutePausedTooLong',
    'MoatRedisMemoryHigh',
    'MoatNoWorkerAlive',
    'MoatNoEdgeAlive',
    'MoatFilterDown',
    'MoatDeferredRateHigh',
    'MoatBouncedRateHigh',
  ])
    expect(alerts.map((a) => a.alert)).toContain(name);
});

test('moat-alerts.test.yaml passes `promtool test rules`, with a firing and a quiet case for every alert', async () => {
  const result = await promtool('test', 'rules', RULE_TESTS);
  expect(result.code, result.output).toBe(0);
  expect(result.output).toContain('SUCCESS');

  const cases = (
    YAML.parse(await readFile(RULE_TESTS, 'utf8')) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    }
  ).tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const rule of allRules(await rules()).filter((r) => r.alert)) {
    const mine = cases.filter((c) => c.alertname === rule.alert);
    expect(
      mine.some((c) => c.exp_alerts.length > 0),
      `${rule.alert} never fires in the test file`,
    ).toBe(true);
    expect(
      mine.some((c) => c.exp_alerts.length === 0),
      `${rule.alert} is never quiet in the test file`,
    ).toBe(true);
  }
});

test('promtool fails on a broken copy: a syntax error, and a changed alert its unit tests catch', async () => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'moat-rules-'));
  try {
    const text = await readFile(RULES, 'utf8');
    const broken = path.join(tmp, 'moat-alerts.yaml');
    await writeFile(
      broken,
      text.replace('max by (route) (moat_route_paused) == 1', 'max by (route) (moat_route_paused == 1'),
    );
    const check = await promtool('check', 'rules', broken);
    expect(check.code).not.toBe(0);
    expect(check.output).toMatch(/FAILED|unclosed|parse error/);

    // Valid, but the pause alert now waits 4 h: its unit test (fires at 3 h) must fail.
    expect(text).toContain('for: 2h');
    await writeFile(broken, text.replace('for: 2h', 'for: 4h'));
    await copyFile(RULE_TESTS, path.join(tmp, 'moat-alerts.test.yaml'));
    expect((await run('promtool', ['check', 'rules', broken])).code).toBe(0);
    const tested = await run('promtool', ['test', 'rules', 'moat-alerts.test.yaml'], tmp);
    expect(tested.code).not.toBe(0);
    expect(tested.output).toContain('alertname: MoatRoutePausedTooLong');
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('every metric and label that the rules and the dashboard use is on a real /metrics', async () => {
  // The scrape has every family METRICS declares (with _bucket/_sum/_count for histograms).
  for (const def of Object.values(METRICS)) {
    expect(scrape.types.get(def.name), def.name).toBe('buckets' in def ? 'histogram' : 'counter');
    const names = 'buckets' in def ? ['_bucket', '_sum', '_count'].map((s) => def.name + s) : [def.name];
    for (const name of names) expect(scrape.series.has(name), name).toBe(true);
  }
  // ... and the families metrics.ts makes from Redis and the heartbeats.
  for (const name of [
    'moat_queue_jobs',
    'moat_queue_oldest_message_age_seconds',
    'moat_route_paused',
    'moat_redis_memory_used_bytes',
    'moat_redis_memory_max_bytes',
    'moat_node_up',
    'moat_node_uptime_seconds',
    'moat_node_memory_rss_bytes',
    'moat_node_heap_used_bytes',
    'moat_node_load1',
    'moat_node_cpu_seconds_total',
    'moat_smtp_sessions_active',
    'moat_filter_up',
  ])
    expect(scrape.series.has(name), name).toBe(true);
  const roles = scrape.samples.filter((s) => s.name === 'moat_node_up').map((s) => s.labels.roles);
  expect(roles.sort()).toEqual(['admin', 'edge', 'worker']);

  // Recording rules add names of their own, with the labels their aggregation keeps.
  const file = await rules();
  const known = new Map(scrape.series);
  for (const r of allRules(file)) if (r.record) known.set(r.record, new Set(recordedLabels(r.expr)));
  expect(known.get('route:moat_queue_pending_jobs:sum')).toEqual(new Set(['route']));

  const d = await dashboard();
  const expressions = [
    ...allRules(file).map((r) => ({ where: r.alert ?? r.record ?? '?', expr: r.expr })),
    ...dashboardExpressions(d).map((e) => ({ where: e.where, expr: withoutVariables(e.expr) })),
  ];
  expect(expressions.length).toBeGreaterThan(30);
  const problems: string[] = [];
  const used = new Set<string>();
  for (const { where, expr } of expressions) {
    const refs = references(expr);
    problems.push(...refs.errors.map((e) => `${where}: ${e}`));
    if (refs.selectors.length === 0) problems.push(`${where}: selects no metric`);
    for (const s of refs.selectors) {
      used.add(s.metric);
      const labels = known.get(s.metric);
      if (!labels) {
        problems.push(`${where}: ${s.metric} is not a metric Moat exports`);
        continue;
      }
      for (const l of s.labels)
        if (!labels.has(l)) problems.push(`${where}: ${s.metric} has no label "${l}"`);
    }
    for (const g of refs.groupings)
      for (const l of g.labels)
        if (!g.metrics.some((m) => known.get(m)?.has(l)))
          problems.push(`${where}: groups by "${l}", which none of ${g.metrics.join(', ')} has`);
  }
  for (const v of variableQueries(d)) {
    if (!known.get(v.metric)?.has(v.label))
      problems.push(`${v.where}: ${v.metric} has no label "${v.label}"`);
    used.add(v.metric);
  }
  expect(problems).toEqual([]);
  // The checker does see a wrong name, a wrong label and a wrong grouping.
  const wrong = references('max by (daemon) (moat_filter_ups{node="x"}) + moat_filter_up{daemon="clamav"}');
  expect(wrong.selectors).toEqual([
    { metric: 'moat_filter_ups', labels: ['node'] },
    { metric: 'moat_filter_up', labels: ['daemon'] },
  ]);
  expect(wrong.groupings).toEqual([{ labels: ['daemon'], metrics: ['moat_filter_ups'] }]);
  expect(references('sum(rate(moat_deliveries_total[5m])').errors).not.toEqual([]);
  // The dashboard covers the main families.
  for (const name of [
    'moat_messages_accepted_total',
    'moat_deliveries_total',
    'moat_queue_jobs',
    'moat_delivery_latency_seconds_bucket',
    'moat_redis_memory_used_bytes',
    'moat_redis_memory_max_bytes',
    'moat_node_up',
    'moat_filter_verdicts_total',
    'moat_filter_up',
  ])
    expect(used.has(name), name).toBe(true);
});

test('the rules on the real scrape: the dead clamd and the paused route fire, nothing else', async () => {
  // The scrape as constant series for 200 minutes (longer than any `for:`), as promtool input.
  const quote = (labels: Record<string, string>) =>
    Object.entries(labels)
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(',');
  const input = scrape.samples
    .filter((s) => s.name.startsWith('moat_') && Number.isFinite(s.value))
    .map((s) => ({ series: `${s.name}{${quote(s.labels)}}`, values: `${s.value}x200` }));
  const edge = scrape.samples.find((s) => s.name === 'moat_node_up' && s.labels.roles === 'edge');
  expect(edge).toBeDefined();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'moat-rules-'));
  try {
    await copyFile(RULES, path.join(tmp, 'moat-alerts.yaml'));
    const firing = (labels: Record<string, string>) => ({
      labels: `ALERTS{${quote({ alertstate: 'firing', ...labels })}}`,
      value: 1,
    });
    const suite = {
      rule_files: ['moat-alerts.yaml'],
      evaluation_interval: '1m',
      tests: [
        {
          interval: '1m',
          input_series: input,
          promql_expr_test: [
            {
              expr: 'count by (alertname) (ALERTS{alertstate="firing"})',
              eval_time: '190m',
              exp_samples: [
                { labels: '{alertname="MoatFilterDown"}', value: 1 },
                { labels: '{alertname="MoatRoutePausedTooLong"}', value: 1 },
              ],
            },
            {
              expr: 'ALERTS{alertstate="firing"}',
              eval_time: '190m',
              exp_samples: [
                firing({
                  alertname: 'MoatFilterDown',
                  filter: 'clamav',
                  node: edge?.labels.node ?? '',
                  severity: 'critical',
                }),
                firing({ alertname: 'MoatRoutePausedTooLong', route, severity: 'warning' }),
              ],
            },
          ],
        },
      ],
    };
    await writeFile(path.join(tmp, 'real.test.yaml'), YAML.stringify(suite));
    const result = await run('promtool', ['test', 'rules', 'real.test.yaml'], tmp);
    expect(result.code, result.output).toBe(0);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('the Grafana dashboard: valid JSON, a Prometheus datasource variable, every panel with it and a target, valid PromQL', async () => {
  const d = await dashboard();
  expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
  expect(d.uid).toMatch(/^[\w-]{1,40}$/);
  const datasource = d.templating.list.find((v) => v.type === 'datasource');
  expect(datasource).toMatchObject({ name: 'datasource', query: 'prometheus' });
  expect(d.panels.length).toBeGreaterThanOrEqual(10);
  const ids = new Set<number>();
  const cells = new Set<string>();
  for (const panel of d.panels) {
    const where = `panel ${panel.id} "${panel.title}"`;
    expect(ids.has(panel.id), `${where}: id used twice`).toBe(false);
    ids.add(panel.id);
    expect(panel.datasource, where).toEqual({ type: 'prometheus', uid: '${datasource}' });
    expect(panel.targets?.length ?? 0, `${where}: no target`).toBeGreaterThan(0);
    const refIds = new Set<string>();
    for (const t of panel.targets ?? []) {
      expect(t.expr, where).toBeTruthy();
      expect(t.datasource, where).toEqual(panel.datasource);
      expect(t.refId, where).toBeTruthy();
      expect(refIds.has(t.refId ?? ''), `${where}: refId ${t.refId} twice`).toBe(false);
      refIds.add(t.refId ?? '');
    }
    // On the 24-column grid, no two panels overlap.
    const { x, y, w, h } = panel.gridPos;
    expect(x >= 0 && w > 0 && x + w <= 24 && h > 0, `${where}: gridPos`).toBe(true);
    for (let i = x; i < x + w; i++)
      for (let j = y; j < y + h; j++) {
        expect(cells.has(`${i},${j}`), `${where} overlaps another panel`).toBe(false);
        cells.add(`${i},${j}`);
      }
  }

  // Prometheus' own parser (promtool) on every expression, as recording rules of a scratch file.
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'moat-dashboard-'));
  try {
    const check = async (exprs: string[]) => {
      const file = path.join(tmp, 'dashboard.yaml');
      const recorded = exprs.map((expr, i) => ({ record: `dashboard:expr_${i}`, expr }));
      await writeFile(file, YAML.stringify({ groups: [{ name: 'dashboard', rules: recorded }] }));
      return promtool('check', 'rules', file);
    };
    const exprs = dashboardExpressions(d).map((e) => withoutVariables(e.expr));
    const good = await check(exprs);
    expect(good.code, good.output).toBe(0);
    expect(good.output).toContain(`${exprs.length} rules found`);
    const bad = await check([...exprs, 'max by (route) (rate(moat_deliveries_total[5m])']);
    expect(bad.code).not.toBe(0);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
