/**
 * Maintenance mode across processes: one `moat edge`, one `moat admin` and two `moat worker`
 * processes share one Redis. The inbound route is paused through the running admin API; the
 * edge keeps accepting, nothing is delivered, and the API counts the mail waiting. Resume
 * drains it: every message exactly once, delivered by both workers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  type DnsServer,
  freePort,
  RawSmtp,
  type RedisServer,
  type SmtpSink,
  startDns,
  startRedis,
  startSmtpSink,
} from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type MoatProcess, runMoat, startMoat } from './moat-process.js';

const MESSAGES = 20;
const ADMIN_TOKEN = 'pause-test-admin-token-0123456789';
const READ_TOKEN = 'pause-test-read-token-0123456789';

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let sink: SmtpSink;
let smtpPort: number;
let adminUrl: string;
let routeId: string;
const workers: MoatProcess[] = [];
const processes: MoatProcess[] = [];

interface RouteView {
  routeId: string;
  paused: boolean;
  counts: { waiting: number; active: number; deferred: number; held: number; failed: number };
}

async function api(method: 'GET' | 'POST', url: string, token = ADMIN_TOKEN) {
  const response = await fetch(`${adminUrl}${url}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function route(): Promise<RouteView | undefined> {
  const { body } = await api('GET', '/routes');
  return (body.routes as RouteView[]).find((r) => r.routeId === routeId);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-pause-'));
  redis = await startRedis({ appendfsync: 'always' });
  dns = await startDns();
  // A little slow, so that the backlog spreads over both workers' slots.
  sink = await startSmtpSink({
    tls: false,
    onData: () => new Promise((r) => setTimeout(() => r(undefined), 100)),
  });
  smtpPort = await freePort();
  const adminPort = await freePort();
  adminUrl = `http://127.0.0.1:${adminPort}`;
  routeId = `[127.0.0.1]:${sink.port}`;
  const config = {
    hostname: 'relay.test',
    dataDir: dir,
    redis: { url: redis.url, prefix: 'pause' },
    smtp: { listen: [`127.0.0.1:${smtpPort}`] },
    inbound: { domains: { 'example.com': routeId } },
    delivery: { concurrency: 2, maxConnectionsPerHost: 2, retry: ['1s'] },
    dns: { servers: [dns.server] },
    admin: {
      listen: `127.0.0.1:${adminPort}`,
      tokens: [
        { name: 'ops', token: '${MOAT_ADMIN_TOKEN}', scope: 'admin' },
        { name: 'grafana', token: READ_TOKEN, scope: 'read' },
      ],
    },
  };
  // The admin token comes from the environment, as in production.
  const env = { MOAT_ADMIN_TOKEN: ADMIN_TOKEN };
  const started = await Promise.all([
    startMoat('edge', config, dir, 'edge', env),
    startMoat('admin', config, dir, 'admin', env),
    startMoat('worker', config, dir, 'worker-a', env),
    startMoat('worker', config, dir, 'worker-b', env),
  ]);
  processes.push(...started);
  workers.push(started[2] as MoatProcess, started[3] as MoatProcess);
  await Promise.all(started.map((p) => p.waitForEvent('moat.ready')));
});
afterAll(async () => {
  for (const p of processes) await p.stop();
  await sink?.close();
  await dns?.close();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('pause via the admin API: the edge accepts, nothing is delivered; resume: all delivered once, by both workers', async () => {
  const path = `/routes/${encodeURIComponent(routeId)}`;
  // A read token may look but not steer.
  expect((await api('POST', `${path}/pause`, READ_TOKEN)).status).toBe(403);
  const paused = await api('POST', `${path}/pause`);
  expect(paused.status).toBe(200);
  expect(paused.body).toMatchObject({ routeId, paused: true });

  const c = await RawSmtp.connect({ port: smtpPort });
  expect(await c.cmd('EHLO mx.elsewhere.test')).toMatch(/^250/);
  for (let i = 0; i < MESSAGES; i++) {
    const message = `From: alice@elsewhere.test\r\nSubject: paused ${i}\r\n\r\nmessage ${i}\r\n`;
    expect(await c.send('alice@elsewhere.test', [`user${i}@example.com`], message)).toMatch(/^250 2\.0\.0 /);
  }
  await c.quit();

  // The workers are up and polling, but the route is paused: nothing moves.
  await new Promise((r) => setTimeout(r, 3000));
  expect(sink.messages).toHaveLength(0);
  expect(await route()).toMatchObject({
    paused: true,
    counts: { waiting: MESSAGES, active: 0, deferred: 0, held: 0, failed: 0 },
  });

  // The operator's view: `moat route list`, a client of the same API.
  const cli = await runMoat(['route', 'list', '--json'], {
    MOAT_ADMIN_URL: adminUrl,
    MOAT_ADMIN_TOKEN: READ_TOKEN,
  });
  expect(cli.code, cli.stderr).toBe(0);
  const listed = (JSON.parse(cli.stdout) as { routes: RouteView[] }).routes.find(
    (r) => r.routeId === routeId,
  );
  expect(listed).toMatchObject({ paused: true, counts: { waiting: MESSAGES } });

  const resumed = await api('POST', `${path}/resume`);
  expect(resumed.status).toBe(200);
  expect(resumed.body).toMatchObject({ routeId, paused: false });

  const unique = () => new Set(sink.messages.flatMap((m) => m.rcptTo)).size;
  await expect.poll(unique, { timeout: 30_000 }).toBe(MESSAGES);
  await expect
    .poll(async () => (await route())?.counts, { timeout: 10_000 })
    .toEqual({ waiting: 0, active: 0, deferred: 0, held: 0, failed: 0 });
  expect(sink.messages.length - unique()).toBe(0); // no duplicates

  const deliveredBy = workers.map(
    (w) =>
      w.logs
        .filter((l) => l.event === 'delivery.delivered')
        .flatMap((l) => (Array.isArray(l.recipients) ? l.recipients : [])).length,
  );
  console.log(`pause: ${MESSAGES} messages drained after resume, per worker: ${deliveredBy.join(' + ')}`);
  expect(deliveredBy.reduce((a, b) => a + b, 0)).toBe(MESSAGES);
  for (const n of deliveredBy) expect(n).toBeGreaterThan(0);
}, 90_000);
