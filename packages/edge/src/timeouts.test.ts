import { Resolver } from 'node:dns';
import { type DnsServer, RawSmtp, type RedisServer, startDns } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MESSAGE, queueIdOf, startRedis, startTestEdge } from './test-fixture.js';

let redis: RedisServer;
let dns: DnsServer;

beforeAll(async () => {
  redis = await startRedis();
  dns = await startDns({ '9.0.0.127.in-addr.arpa': { PTR: ['client.example.net'] } });
});
afterAll(async () => {
  await dns.close();
  await redis.stop();
});

test('an idle session is closed after smtp.idleTimeout', async () => {
  const t = await startTestEdge(redis, { smtp: { listen: ['127.0.0.1:2525'], idleTimeout: '300ms' } });
  try {
    const c = await RawSmtp.connect({ port: t.port });
    await c.cmd('EHLO idle.example.net');
    expect(await c.reply()).toMatch(/^421 /);
    await expect(c.reply()).rejects.toThrow(/^connection closed/);
  } finally {
    await t.close();
  }
});

test('DATA that takes longer than smtp.dataTimeout is cut off with 421, and nothing is queued', async () => {
  const t = await startTestEdge(redis, { smtp: { listen: ['127.0.0.1:2525'], dataTimeout: '300ms' } });
  try {
    const c = await RawSmtp.connect({ port: t.port });
    await c.cmd('EHLO slow.example.net');
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@example.com>');
    expect(await c.cmd('DATA')).toMatch(/^354 /);
    // Trickle: a byte every 100 ms keeps the socket from idling, but DATA never ends.
    const timer = setInterval(() => c.write('x'), 100);
    try {
      expect(await c.reply()).toBe('421 4.4.2 DATA timeout');
    } finally {
      clearInterval(timer);
    }
    expect(await t.redis.zcard(t.spool.keys.messages)).toBe(0);
  } finally {
    await t.close();
  }
});

test("with smtp.reverseDns, the client name comes from Moat's own resolver and goes into Received:", async () => {
  const resolver = new Resolver({ timeout: 1000, tries: 1 });
  resolver.setServers([dns.server]);
  const t = await startTestEdge(
    redis,
    { smtp: { listen: ['127.0.0.1:2525'], reverseDns: true } },
    { resolver: { reverse: (ip, cb) => resolver.reverse(ip, cb) } },
  );
  try {
    // From 127.0.0.9, an address /etc/hosts does not name (the resolver reads that file first).
    const c = await RawSmtp.connect({ port: t.port, localAddress: '127.0.0.9' });
    await c.cmd('EHLO whoever.example.net');
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@example.com>');
    const id = queueIdOf(await c.data(MESSAGE));
    expect((await t.spool.readBody(id))?.toString('latin1')).toMatch(
      /^Received: from whoever\.example\.net \(client\.example\.net \[127\.0\.0\.9\]\)/,
    );
    expect(dns.queries).toContainEqual(
      expect.objectContaining({ name: '9.0.0.127.in-addr.arpa', type: 'PTR' }),
    );
    c.destroy();
  } finally {
    await t.close();
  }
});
