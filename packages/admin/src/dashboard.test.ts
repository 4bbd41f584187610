/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core):
 * sign in with a token, see routes and deferred mail, pause and resume a route with a click,
 * search tracking. Skipped, saying why, only when /usr/bin/chromium is not installed.
 */
import { Heartbeat, routeStatus } from '@moat/spool';
import { chromiumAvailable, chromiumLaunchOptions } from '@moat/testkit';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ADMIN_TOKEN,
  deferJobs,
  type Fixture,
  INBOUND,
  queueMail,
  READ_TOKEN,
  startFixture,
} from './test-app.js';

const haveChromium = chromiumAvailable('dashboard browser tests');

describe.skipIf(!haveChromium)('dashboard in headless Chromium', () => {
  let fx: Fixture;
  let browser: Browser;
  let base: string;
  let spool: Awaited<ReturnType<Fixture['app']>>['spool'];
  let deferredId: string;

  beforeAll(async () => {
    fx = await startFixture();
    const built = await fx.app();
    spool = built.spool;
    await queueMail(spool, 'alice@example.org', { [INBOUND]: ['bob@example.com'] });
    const deferred = await queueMail(spool, 'carol@example.org', { mx: ['dave@example.net'] });
    deferredId = deferred.id;
    await deferJobs(spool, fx.workerRedis, 'mx', 1, {
      code: 450,
      text: '4.2.0 Mailbox busy',
      host: 'mx.example.net',
    });
    base = await built.app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch(chromiumLaunchOptions);
  });
  afterAll(async () => {
    await browser?.close();
    await fx?.close();
  });

  async function signIn(page: Page, token: string) {
    await page.goto(`${base}/dashboard`);
    await page.fill('#token', token);
    await page.click('#login-form button[type=submit]');
  }

  const routeRow = (page: Page, routeId: string) => page.locator(`#routes tbody tr[data-route="${routeId}"]`);

  /** MOAT_SCREENSHOT_DIR=docs/screenshots (scripts/screenshots.sh) keeps them for the docs. */
  const shot = (page: Page, name: string) =>
    page.screenshot({ path: `${process.env.MOAT_SCREENSHOT_DIR ?? '/tmp'}/${name}.png`, fullPage: true });

  test('a wrong token is refused and the page stays on the sign-in form', async () => {
    const page = await browser.newPage();
    await signIn(page, 'not-the-right-token-at-all');
    await expect.poll(() => page.textContent('#login-error')).toBe('the token is not valid');
    expect(await page.isVisible('#main')).toBe(false);
    expect(await page.evaluate('sessionStorage.getItem("moat.adminToken")')).toBeNull();
    await page.close();
  });

  test('routes with depth, oldest deferred with last reply, pause and resume by click, tracking search', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await signIn(page, ADMIN_TOKEN);
    await page.waitForSelector('#main[data-loaded]');
    expect(await page.evaluate('sessionStorage.getItem("moat.adminToken")')).toBe(ADMIN_TOKEN);

    const inbound = routeRow(page, INBOUND);
    expect(await inbound.locator('td').allTextContents()).toEqual([
      INBOUND,
      'example.com',
      'running',
      '1',
      '0',
      '0',
      '0',
      '0',
      expect.stringMatching(/^\d+s$/),
      'Pause',
    ]);
    const deferredRow = page.locator('#deferred tbody tr').first();
    expect(await deferredRow.locator('td').first().textContent()).toBe(deferredId);
    expect(await deferredRow.textContent()).toContain('450 4.2.0 Mailbox busy (mx.example.net)');

    await inbound.locator('button').click();
    await expect.poll(async () => (await routeStatus(spool, INBOUND)).paused).toBe(true);
    await expect.poll(() => routeRow(page, INBOUND).locator('td').nth(2).textContent()).toBe('paused');
    expect(await routeRow(page, INBOUND).locator('button').textContent()).toBe('Resume');
    expect(await page.textContent('#status')).toBe(`Route ${INBOUND} paused`);

    await routeRow(page, INBOUND).locator('button').click();
    await expect.poll(async () => (await routeStatus(spool, INBOUND)).paused).toBe(false);
    await expect.poll(() => routeRow(page, INBOUND).locator('td').nth(2).textContent()).toBe('running');

    await page.fill('#track-query', deferredId);
    await page.click('#track-form button');
    await expect.poll(() => page.locator('#events tbody tr').count()).toBe(2);
    const events = await page.locator('#events tbody tr td:nth-child(2)').allTextContents();
    expect(events).toEqual(['deferred', 'received']);

    await shot(page, 'dashboard-routes');
    expect(errors).toEqual([]);
    await page.close();
  });

  test('nodes with their Node.js and filter daemons, charts sampled from /metrics, a message timeline with filter verdicts', async () => {
    const beat = new Heartbeat(spool.redis, spool.keys, () => ({
      id: 'edge1:4242',
      hostname: 'edge1',
      pid: 4242,
      roles: ['edge'],
      version: '0.1.0',
      nodeVersion: 'v24.22.3',
      startedAt: Date.now() - 3_600_000,
      stats: { sessions: 7, 'filterUp:clamav': 1, 'filterUp:rspamd': 0 },
    }));
    await beat.beat();
    const filtered = await spool.enqueue({
      sender: 'news@elsewhere.test',
      routes: [{ routeId: INBOUND, recipients: ['bob@example.com'] }],
      body: Buffer.from('Subject: filtered\r\n\r\nhi\r\n'),
      client: { ip: '198.51.100.1', helo: 'mx.elsewhere.test', user: null, tls: false },
      filters: [
        { filter: 'clamav', verdict: 'accept', ms: 3.1, result: { status: 'clean' } },
        {
          filter: 'rspamd',
          verdict: 'tag',
          ms: 40.2,
          result: { action: 'add header', score: 7.5, symbols: ['X'] },
        },
      ],
    });
    const page = await browser.newPage();
    await page.setViewportSize({ width: 1280, height: 900 });
    await signIn(page, ADMIN_TOKEN);
    await page.waitForSelector('#main[data-loaded]');
    const node = page.locator('#nodes tbody tr[data-node="edge1:4242"] td');
    expect(await node.allTextContents()).toEqual([
      'edge1:4242',
      'edge',
      '0.1.0',
      'v24.22.3',
      '1h 0m',
      expect.stringMatching(/^\ds ago$/),
      '7',
      'clamav up, rspamd DOWN',
    ]);
    expect(await node.nth(7).getAttribute('class')).toBe('down');
    // A first sample at sign-in; the queue chart's figure is the waiting + deferred count.
    await expect.poll(() => page.getAttribute('#charts', 'data-samples')).not.toBeNull();
    expect(Number(await page.textContent('#queue-now'))).toBeGreaterThanOrEqual(2);
    await page.evaluate('refresh()');
    await expect
      .poll(async () => Number(await page.getAttribute('#charts', 'data-samples')))
      .toBeGreaterThanOrEqual(2);
    expect(await page.locator('#chart-queue polyline').count()).toBe(1);
    await shot(page, 'dashboard-overview');

    await page.fill('#track-query', 'news@elsewhere.test');
    await page.click('#track-form button');
    await expect.poll(() => page.locator('#events tbody tr').count()).toBeGreaterThan(0);
    const row = page.locator('#events tbody tr').first();
    expect(await row.locator('td').nth(8).textContent()).toBe(
      'clamav accept; rspamd tag action=add header score=7.5',
    );
    // The message id opens its timeline.
    await row.locator('a.message').click();
    await expect.poll(() => page.inputValue('#track-query')).toBe(filtered.id);
    await expect
      .poll(() => page.locator('#events tbody tr td:nth-child(2)').allTextContents())
      .toEqual(['received']);
    await shot(page, 'dashboard-message');
    await beat.stop();
    await page.close();
  });

  test('bull-board: opened from the dashboard with the token as a cookie, the route queues listed; no cookie, no entry', async () => {
    const page = await browser.newPage();
    await signIn(page, ADMIN_TOKEN);
    await page.waitForSelector('#main[data-loaded]');
    await page.click('#queues');
    await page.waitForURL(`${base}/bull-board**`);
    await expect.poll(() => page.locator('body').textContent(), { timeout: 15_000 }).toContain(INBOUND);
    expect(await page.locator('body').textContent()).toContain('Moat queues');
    await shot(page, 'bull-board');
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'moat_board')).toMatchObject({
      path: '/bull-board',
      httpOnly: true,
      sameSite: 'Strict',
    });
    await page.close();
    // Without the cookie (or a bearer token), bull-board's API refuses.
    const api = await fetch(`${base}/bull-board/api/queues`);
    expect(api.status).toBe(401);
    const read = await fetch(`${base}/bull-board/api/queues`, {
      headers: { cookie: `moat_board=${READ_TOKEN}` },
    });
    expect(read.status).toBe(200);
    // A read token sees but does not act.
    const act = await fetch(`${base}/bull-board/api/queues/x/clean/completed`, {
      method: 'PUT',
      headers: { cookie: `moat_board=${READ_TOKEN}` },
    });
    expect(act.status).toBe(403);
  });

  test('mail data is shown as text, never as HTML', async () => {
    await queueMail(spool, '<img src=x onerror=alert(1)>@example.org', { mx: ['x@example.net'] });
    const page = await browser.newPage();
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs += 1;
      void d.dismiss();
    });
    await signIn(page, ADMIN_TOKEN);
    await page.waitForSelector('#main[data-loaded]');
    await page.fill('#track-query', '@example.net');
    await page.click('#track-form button');
    await expect
      .poll(() => page.locator('#events tbody').textContent())
      .toContain('<img src=x onerror=alert(1)>');
    expect(await page.locator('#events img').count()).toBe(0);
    expect(dialogs).toBe(0);
    await page.close();
  });
});
