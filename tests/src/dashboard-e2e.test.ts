/**
 * The admin dashboard after real mail has flowed, in a real headless Chromium (Debian's
 * `chromium`, driven by playwright-core, as packages/admin/src/dashboard.test.ts does): one
 * `moat start` (edge, worker and admin in one process) relays our domain to an SMTP sink; a
 * few messages go in over SMTP and reach the sink. Then what a person looks at: the node in
 * the nodes panel (its roles, its Node.js), the delivered-per-minute chart, and a message's
 * timeline opened by the queue id of its 250 reply. No fixture data: every figure comes from
 * the running process. Skipped, saying why, only when /usr/bin/chromium is not installed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  chromiumAvailable,
  chromiumLaunchOptions,
  type DnsServer,
  freePort,
  RawSmtp,
  type RedisServer,
  type SmtpSink,
  startDns,
  startRedis,
  startSmtpSink,
} from '@moat/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MoatProcess, startMoat } from './moat-process.js';

const haveChromium = chromiumAvailable('dashboard e2e browser test');

const MESSAGES = 3;
const ADMIN_TOKEN = 'dashboard-e2e-admin-token-0123456789';

/** The sum of a counter's lines on /metrics, as the dashboard's script adds them up. */
function metricSum(text: string, name: string, match?: RegExp): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (match && !match.test(line)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

describe.skipIf(!haveChromium)('dashboard in headless Chromium after real mail through `moat start`', () => {
  let dir: string;
  let redis: RedisServer;
  let dns: DnsServer;
  let sink: SmtpSink;
  let moat: MoatProcess;
  let browser: Browser;
  let smtpPort: number;
  let base: string;
  let routeId: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'moat-dashboard-e2e-'));
    redis = await startRedis();
    dns = await startDns();
    sink = await startSmtpSink({ tls: false });
    smtpPort = await freePort();
    const adminPort = await freePort();
    base = `http://127.0.0.1:${adminPort}`;
    routeId = `[127.0.0.1]:${sink.port}`;
    moat = await startMoat(
      'start',
      {
        hostname: 'relay.test',
        dataDir: dir,
        redis: { url: redis.url, prefix: 'dash' },
        smtp: { listen: [`127.0.0.1:${smtpPort}`] },
        inbound: { domains: { 'example.com': routeId } },
        delivery: { retry: ['1s'] },
        dns: { servers: [dns.server], timeout: '1s' },
        admin: {
          listen: `127.0.0.1:${adminPort}`,
          tokens: [{ name: 'ops', token: '${MOAT_ADMIN_TOKEN}', scope: 'admin' }],
        },
      },
      dir,
      'dashboard',
      { MOAT_ADMIN_TOKEN: ADMIN_TOKEN },
    );
    await moat.waitForEvent('moat.ready');
    browser = await chromium.launch(chromiumLaunchOptions);
  });
  afterAll(async () => {
    await browser?.close();
    await moat?.stop(); // SIGTERM to its PID (SIGKILL if it does not exit in time)
    await sink?.close();
    await dns?.close();
    await redis?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** MOAT_SCREENSHOT_DIR=docs/screenshots keeps it for the docs, as in the admin package's test. */
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: `${process.env.MOAT_SCREENSHOT_DIR ?? '/tmp'}/${name}.png`, fullPage: true });

  /** Messages accepted and delivered on the running Moat's /metrics (its counters flush every 2 s). */
  const countedOnMetrics = async () => {
    const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    return [
      metricSum(text, 'moat_messages_accepted_total'),
      metricSum(text, 'moat_deliveries_total', /result="delivered"/),
    ];
  };

  test('the node with its roles and Node.js, deliveries on the chart, a message timeline: received, delivered', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.setViewportSize({ width: 1280, height: 900 });

    // Signed in before any mail, so the charts' first samples are from before it.
    await page.goto(`${base}/dashboard`);
    await page.fill('#token', ADMIN_TOKEN);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#main[data-loaded]', { timeout: 15_000 });
    await page.evaluate('refresh()');
    await expect.poll(() => page.getAttribute('#charts', 'data-samples')).toBe('2');

    // Real mail: one SMTP session, a few messages for our domain, each answered with its queue id.
    const c = await RawSmtp.connect({ port: smtpPort });
    expect(await c.cmd('EHLO mx.elsewhere.test')).toMatch(/^250/);
    const queueIds: string[] = [];
    for (let i = 1; i <= MESSAGES; i++) {
      const reply = await c.send(
        'alice@elsewhere.test',
        ['bob@example.com'],
        `From: alice@elsewhere.test\r\nTo: bob@example.com\r\nSubject: real mail ${i}\r\n\r\nHello ${i}\r\n`,
      );
      expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Za-z]{20}$/);
      queueIds.push(reply.split(' ').pop() ?? '');
    }
    await c.quit();
    const got = await sink.waitForMessages(MESSAGES, 20_000);
    expect(got.map((m) => m.rcptTo)).toEqual(Array(MESSAGES).fill(['bob@example.com']));
    // Counters reach /metrics on their next flush; then the page takes its next sample.
    await expect.poll(countedOnMetrics, { timeout: 15_000, interval: 100 }).toEqual([MESSAGES, MESSAGES]);
    await page.evaluate('refresh()');
    await expect
      .poll(async () => Number(await page.getAttribute('#charts', 'data-samples')))
      .toBeGreaterThanOrEqual(3);

    // Nodes: the one running process, its three roles, and the Node.js it runs on (this test's).
    const nodeRows = page.locator('#nodes tbody tr');
    expect(await nodeRows.count()).toBe(1);
    const node = nodeRows.first();
    expect(await node.getAttribute('data-node')).toBe(`${os.hostname()}:${moat.pid}`);
    const cells = await node.locator('td').allTextContents();
    const version = moat.logs.find((l) => l.event === 'config.loaded')?.version;
    expect(version).toEqual(expect.stringMatching(/^\d+\.\d+\.\d+/));
    expect(cells.slice(0, 6)).toEqual([
      `${os.hostname()}:${moat.pid}`,
      'edge, worker, admin',
      version,
      process.version,
      expect.stringMatching(/^\d+(s|m)$/),
      expect.stringMatching(/^\d+s ago$/),
    ]);

    // Throughput: a line on both charts, peaking at the top (a rate above zero), and the
    // samples they are drawn from count exactly the messages accepted and delivered.
    for (const chart of ['#chart-in', '#chart-out']) {
      const points = await page.getAttribute(`${chart} polyline`, 'points');
      const ys = (points ?? '').split(' ').map((p) => Number(p.split(',')[1]));
      expect(ys.length, chart).toBeGreaterThanOrEqual(2);
      expect(Math.min(...ys), chart).toBe(2);
    }
    expect(Number.parseInt((await page.textContent('#rate-out')) ?? '', 10)).toBeGreaterThan(0);
    expect(await page.textContent('#rate-out')).toMatch(/^\d+\/min$/);
    expect(Number.parseInt((await page.textContent('#rate-in')) ?? '', 10)).toBeGreaterThan(0);
    expect(
      await page.evaluate(
        '[samples.at(-1).accepted - samples[0].accepted, samples.at(-1).delivered - samples[0].delivered]',
      ),
    ).toEqual([MESSAGES, MESSAGES]);
    expect(await page.textContent('#queue-now')).toBe('0');

    // Tracking by domain: every message received and delivered.
    await page.fill('#track-query', '@example.com');
    await page.click('#track-form button');
    await expect
      .poll(async () => (await page.locator('#events tbody tr td:nth-child(2)').allTextContents()).sort())
      .toEqual([...Array(MESSAGES).fill('delivered'), ...Array(MESSAGES).fill('received')]);

    // One message's timeline, by the queue id of its 250: received, then delivered to the sink.
    const queueId = queueIds[1] ?? '';
    await page.fill('#track-query', queueId);
    await page.click('#track-form button');
    await expect
      .poll(() => page.locator('#events tbody tr td:nth-child(2)').allTextContents())
      .toEqual(['delivered', 'received']);
    const delivered = await page.locator('#events tbody tr').first().locator('td').allTextContents();
    expect(delivered.slice(1, 6)).toEqual([
      'delivered',
      queueId,
      routeId,
      'alice@elsewhere.test',
      'bob@example.com',
    ]);
    expect(delivered[6]).toBe(`[127.0.0.1]:${sink.port}`); // the host it went to
    expect(delivered[7]).toMatch(/^250 /); // and the sink's answer

    await shot(page, 'dashboard-real-mail');
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
