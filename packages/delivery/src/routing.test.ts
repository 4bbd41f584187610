import { freePort } from '@moat/testkit';
import { describe, expect, test } from 'vitest';
import { mxConfig, useHarness } from './test-harness.js';

const fx = useHarness();
const { sink } = fx;

describe('inbound: our domains go to their smart host', () => {
  test('BODY=8BITMIME is declared exactly for messages with 8-bit bytes', async () => {
    const exchange = await sink();
    const run = await fx.h.start({ inbound: { domains: { 'example.com': `[127.0.0.1]:${exchange.port}` } } });
    await run.send('someone@elsewhere.test', ['a@example.com'], 'Plain ASCII');
    await run.send('someone@elsewhere.test', ['b@example.com'], 'Grüße');
    const messages = await exchange.waitForMessages(2);
    const bodyOf = (rcpt: string) => messages.find((m) => m.rcptTo.includes(rcpt))?.body;
    expect(bodyOf('a@example.com')).toBe('7bit');
    expect(bodyOf('b@example.com')).toBe('8bitmime');
  });

  test('a message for example.com arrives at [127.0.0.1]:port, body intact, job released', async () => {
    const exchange = await sink();
    const run = await fx.h.start({ inbound: { domains: { 'example.com': `[127.0.0.1]:${exchange.port}` } } });
    const meta = await run.send('someone@elsewhere.test', ['Bob@example.com', 'carol@example.com']);
    const [message] = await exchange.waitForMessages(1);
    expect(message?.mailFrom).toBe('someone@elsewhere.test');
    expect(message?.rcptTo).toEqual(['Bob@example.com', 'carol@example.com']);
    expect(message?.raw.toString()).toContain('Subject: Test message');
    const delivered = await run.waitForEvent((e) => e.type === 'delivered' && e.messageId === meta.id);
    expect(delivered).toMatchObject({
      host: `[127.0.0.1]:${exchange.port}`,
      recipients: ['Bob@example.com', 'carol@example.com'],
    });
    expect(delivered.reply).toMatch(/^250 /);
    await expect.poll(() => run.spool.readBody(meta.id)).toBeNull();
  });

  test('a failover list: the first smart host does not answer, the second gets the mail', async () => {
    const down = await freePort();
    const second = await sink();
    const run = await fx.h.start({
      inbound: { domains: { 'example.com': [`[127.0.0.1]:${down}`, `[127.0.0.1]:${second.port}`] } },
    });
    await run.send('a@elsewhere.test', ['bob@example.com']);
    await second.waitForMessages(1);
    expect(run.logs).toContainEqual(
      expect.objectContaining({ event: 'delivery.host_failed', host: `[127.0.0.1]:${down}` }),
    );
  });

  test('a smart host by name without brackets is found by MX lookup', async () => {
    const relay = await sink({ host: '127.0.0.4' });
    fx.h.dns.set('relay.corp.test', 'MX', [{ preference: 5, exchange: 'in.corp.test' }]);
    fx.h.dns.set('in.corp.test', 'A', ['127.0.0.4']);
    const run = await fx.h.start({
      inbound: { domains: { 'example.org': `relay.corp.test:${relay.port}` } },
    });
    await run.send('a@elsewhere.test', ['x@example.org']);
    const [message] = await relay.waitForMessages(1);
    expect(message?.rcptTo).toEqual(['x@example.org']);
  });
});

describe('outbound: MX delivery', () => {
  test('MX by preference: the lower preference gets the mail; when it is down, the next one', async () => {
    const primary = await sink({ host: '127.0.0.2' });
    const backup = await sink({ host: '127.0.0.3', port: primary.port });
    fx.h.dns.set('pref.test', 'MX', [
      { preference: 20, exchange: 'mx2.pref.test' },
      { preference: 10, exchange: 'mx1.pref.test' },
    ]);
    fx.h.dns.set('mx1.pref.test', 'A', ['127.0.0.2']);
    fx.h.dns.set('mx2.pref.test', 'A', ['127.0.0.3']);
    const run = await fx.h.start(mxConfig(primary.port));
    await run.send('alice@inside.test', ['bob@pref.test']);
    await primary.waitForMessages(1);
    expect(backup.messages).toHaveLength(0);

    await primary.close();
    const meta = await run.send('alice@inside.test', ['carol@pref.test']);
    const [message] = await backup.waitForMessages(1);
    expect(message?.rcptTo).toEqual(['carol@pref.test']);
    const delivered = await run.waitForEvent((e) => e.type === 'delivered' && e.messageId === meta.id);
    expect(delivered.host).toBe(`mx2.pref.test[127.0.0.3]:${primary.port}`);
  });

  test('a domain without MX is delivered to its own address (implicit MX)', async () => {
    const target = await sink({ host: '127.0.0.5' });
    fx.h.dns.set('implicit.test', 'A', ['127.0.0.5']);
    const run = await fx.h.start(mxConfig(target.port));
    await run.send('alice@inside.test', ['bob@implicit.test']);
    const [message] = await target.waitForMessages(1);
    expect(message?.rcptTo).toEqual(['bob@implicit.test']);
    expect(fx.h.dns.queries).toContainEqual({ name: 'implicit.test', type: 'MX' });
  });

  test('the upstream smart host with AUTH takes all outbound mail, no MX lookup', async () => {
    const isp = await sink({ users: { moat: 'secret-pass' } });
    const run = await fx.h.start({
      outbound: {
        clients: ['127.0.0.0/8'],
        smarthost: { hosts: `[127.0.0.1]:${isp.port}`, auth: { user: 'moat', pass: 'secret-pass' } },
      },
    });
    const before = fx.h.dns.queries.length;
    await run.send('alice@inside.test', ['bob@anywhere.test']);
    await isp.waitForMessages(1);
    expect(isp.logins).toEqual(['moat']);
    expect(fx.h.dns.queries.slice(before).filter((q) => q.name === 'anywhere.test')).toEqual([]);
  });
});

describe('stop', () => {
  test('stop() lets an active delivery finish and releases its job', async () => {
    let started = 0;
    const exchange = await sink({
      onData: () => {
        started++;
        return new Promise((r) => setTimeout(() => r(undefined), 800));
      },
    });
    const run = await fx.h.start({ inbound: { domains: { 'example.com': `[127.0.0.1]:${exchange.port}` } } });
    const meta = await run.send('a@elsewhere.test', ['bob@example.com']);
    await expect.poll(() => started).toBe(1);
    await run.service.stop();
    expect(exchange.messages).toHaveLength(1);
    expect(await run.spool.readBody(meta.id)).toBeNull();
    expect(run.logs.map((l) => l.event)).toContain('delivery.stopped');
  });
});
