import { pauseRoute, resumeRoute, routeStatus } from '@moat/spool';
import { describe, expect, test } from 'vitest';
import { mxConfig, useHarness } from './test-harness.js';

const fx = useHarness();
const { sink } = fx;

describe('maintenance mode', () => {
  test('pause a route, queue 100: none delivered; resume: all 100, over reused connections', async () => {
    const exchange = await sink();
    const route = `[127.0.0.1]:${exchange.port}`;
    const run = await fx.h.start({ inbound: { domains: { 'example.com': route } } });
    await pauseRoute(run.spool, route);
    const ids = new Set<string>();
    for (let i = 0; i < 100; i++) ids.add((await run.send('a@elsewhere.test', [`user${i}@example.com`])).id);
    await new Promise((r) => setTimeout(r, 1000));
    expect(exchange.messages).toHaveLength(0);
    expect((await routeStatus(run.spool, route)).counts.waiting).toBe(100);

    await resumeRoute(run.spool, route);
    const all = await exchange.waitForMessages(100, 30_000);
    const recipients = new Set(all.flatMap((m) => m.rcptTo));
    expect(recipients.size).toBe(100);
    expect(exchange.connections).toBeLessThanOrEqual(run.config.delivery.maxConnectionsPerHost * 2);
    expect(exchange.connections).toBeLessThan(100);
    await expect
      .poll(async () => (await routeStatus(run.spool, route)).counts.waiting, { timeout: 5000 })
      .toBe(0);
    for (const id of ids) expect(await run.spool.readBody(id)).toBeNull();
  });
});

describe('connections', () => {
  test('at most maxConnectionsPerHost sessions at once, and each carries at most maxMessagesPerConnection', async () => {
    let inFlight = 0;
    let peak = 0;
    const exchange = await sink({
      onData: async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 50));
        inFlight--;
        return undefined;
      },
    });
    const run = await fx.h.start({
      inbound: { domains: { 'example.com': `[127.0.0.1]:${exchange.port}` } },
      delivery: { maxConnectionsPerHost: 2, maxMessagesPerConnection: 3, concurrency: 10 },
    });
    for (let i = 0; i < 12; i++) await run.send('a@elsewhere.test', [`u${i}@example.com`]);
    await exchange.waitForMessages(12, 20_000);
    expect(peak).toBeLessThanOrEqual(2);
    expect(peak).toBe(2);
    // 12 messages, 3 per connection: at least 4 connections, and reuse kept it near that
    expect(exchange.connections).toBeGreaterThanOrEqual(4);
    expect(exchange.connections).toBeLessThanOrEqual(8);
    expect(run.service.connectionsOpened()).toBe(exchange.connections);
    // A relay route's jobs wait for a connection rather than going back to the queue.
    expect(run.logs.some((l) => l.event === 'delivery.busy')).toBe(false);
  });

  test('one slow domain does not hold every slot: mail for another domain goes out meanwhile', async () => {
    const slow = await sink({
      host: '127.0.0.16',
      onData: () => new Promise((r) => setTimeout(() => r(undefined), 1000)),
    });
    const fast = await sink({ host: '127.0.0.17', port: slow.port });
    fx.h.dns.set('slow.test', 'A', ['127.0.0.16']);
    fx.h.dns.set('fast.test', 'A', ['127.0.0.17']);
    const run = await fx.h.start(
      mxConfig(slow.port, { delivery: { concurrency: 4, maxConnectionsPerHost: 1 } }),
    );
    for (let i = 0; i < 6; i++) await run.send('a@inside.test', [`u${i}@slow.test`]);
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await run.send('a@inside.test', ['v@fast.test']);
    await fast.waitForMessages(1, 5000);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(slow.messages.length).toBeLessThan(6);
    await slow.waitForMessages(6, 30_000);
    expect(run.logs.some((l) => l.event === 'delivery.busy')).toBe(true);
  });
});
