import { freePort } from '@moat/testkit';
import { describe, expect, test } from 'vitest';
import { mxConfig, useHarness } from './test-harness.js';

const fx = useHarness();
const { sink } = fx;

describe('retries', () => {
  test('smart host down, then up: deferred on the schedule, then delivered once, nothing lost', async () => {
    const port = await freePort();
    const run = await fx.h.start({
      inbound: { domains: { 'example.com': `[127.0.0.1]:${port}` } },
      delivery: { retry: ['200ms', '400ms'], connectTimeout: '1s' },
    });
    const meta = await run.send('a@elsewhere.test', ['bob@example.com', 'carol@example.com']);
    await expect
      .poll(async () => (await run.events(meta.id)).filter((e) => e.type === 'deferred').length, {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(3);
    const exchange = await sink({ port });
    const [message] = await exchange.waitForMessages(1);
    expect(message?.rcptTo).toEqual(['bob@example.com', 'carol@example.com']);
    await run.waitForEvent((e) => e.type === 'delivered' && e.messageId === meta.id);

    // attempts at 0, +200 ms, +400 ms, +400 ms … (the last delay repeats)
    const times = (await run.events(meta.id))
      .filter((e) => e.type === 'deferred')
      .map((e) => e.time ?? 0)
      .sort((x, y) => x - y);
    const gaps = times.slice(1).map((t, i) => t - (times[i] ?? 0));
    expect(gaps[0]).toBeGreaterThanOrEqual(190);
    expect(gaps[0]).toBeLessThan(1000);
    for (const gap of gaps.slice(1)) {
      expect(gap).toBeGreaterThanOrEqual(390);
      expect(gap).toBeLessThan(1500);
    }
    await expect.poll(() => run.spool.readBody(meta.id)).toBeNull();
    expect(exchange.messages).toHaveLength(1);
  });

  test('a sink answering 451, then 250: one delivery after one deferral', async () => {
    const exchange = await sink();
    let refusals = 1;
    exchange.setBehaviour({
      onRcpt: () => (refusals-- > 0 ? { code: 451, message: '4.3.0 Try again later' } : undefined),
    });
    const run = await fx.h.start({
      inbound: { domains: { 'example.com': `[127.0.0.1]:${exchange.port}` } },
      delivery: { retry: ['200ms'] },
    });
    const meta = await run.send('a@elsewhere.test', ['bob@example.com']);
    await exchange.waitForMessages(1);
    const events = await run.events(meta.id);
    await run.waitForEvent((e) => e.type === 'delivered' && e.messageId === meta.id);
    expect(events.find((e) => e.type === 'deferred')?.reply).toBe('451 4.3.0 Try again later');
    expect(exchange.messages).toHaveLength(1);
  });

  test('a DNS failure (SERVFAIL) defers; when DNS heals the mail goes out', async () => {
    const target = await sink({ host: '127.0.0.13' });
    fx.h.dns.set('flaky.test', 'A', ['127.0.0.13']);
    fx.h.dns.fail('flaky.test', 'servfail');
    const run = await fx.h.start(mxConfig(target.port));
    const meta = await run.send('alice@inside.test', ['bob@flaky.test']);
    const deferred = await run.waitForEvent((e) => e.type === 'deferred' && e.messageId === meta.id);
    expect(deferred.reply).toMatch(/MX lookup of flaky\.test failed \(ESERVFAIL\)/);
    fx.h.dns.fail('flaky.test', null);
    await target.waitForMessages(1);
  });

  test('the queue lifetime ends: pending recipients bounce with the last answer', async () => {
    const mailbox = await sink();
    const remote = await sink({ host: '127.0.0.14' });
    remote.setBehaviour({ onRcpt: () => ({ code: 452, message: '4.2.2 Mailbox full' }) });
    fx.h.dns.set('full.test', 'A', ['127.0.0.14']);
    const run = await fx.h.start({
      ...mxConfig(remote.port, { delivery: { lifetime: '1s', delayWarning: null } }),
      inbound: { domains: { 'example.com': `[127.0.0.1]:${mailbox.port}` } },
    });
    const started = Date.now();
    const meta = await run.send('alice@example.com', ['bob@full.test']);
    const [dsn] = await mailbox.waitForMessages(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    const text = dsn?.raw.toString() ?? '';
    expect(text).toContain('Action: failed');
    expect(text).toContain('Status: 4.2.2');
    expect(text).toContain('Diagnostic-Code: smtp; 452 4.2.2 Mailbox full');
    await run.waitForEvent((e) => e.type === 'expired' && e.messageId === meta.id);
    await expect.poll(() => run.spool.readBody(meta.id)).toBeNull();
  });

  test('a delay warning goes out once, then the message is delivered', async () => {
    const mailbox = await sink();
    const remote = await sink({ host: '127.0.0.15' });
    let refusals = 4;
    remote.setBehaviour({
      onRcpt: () => (refusals-- > 0 ? { code: 421, message: '4.4.5 Busy, come back later' } : undefined),
    });
    fx.h.dns.set('slow.test', 'A', ['127.0.0.15']);
    const run = await fx.h.start({
      ...mxConfig(remote.port, { delivery: { retry: ['150ms'], delayWarning: '300ms' } }),
      inbound: { domains: { 'example.com': `[127.0.0.1]:${mailbox.port}` } },
    });
    await run.send('alice@example.com', ['bob@slow.test']);
    const [warning] = await mailbox.waitForMessages(1);
    const text = warning?.raw.toString() ?? '';
    expect(text).toContain('Subject: Delayed Mail (still being retried)');
    expect(text).toContain('Action: delayed');
    await remote.waitForMessages(1, 15_000);
    expect(mailbox.messages).toHaveLength(1);
  });
});
