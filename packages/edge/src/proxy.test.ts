import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toV1 } from './proxy.js';
import { MESSAGE, queueIdOf, startRedis, startTestEdge, type TestEdge } from './test-fixture.js';

// Behind a TCP load balancer, policy must see the client address from the PROXY header.
let redis: RedisServer;
let t: TestEdge;

beforeAll(async () => {
  redis = await startRedis();
  t = await startTestEdge(redis, {
    smtp: { listen: ['127.0.0.1:2525'], proxyProtocol: true, trustedProxies: ['127.0.0.1/32'] },
    outbound: { clients: ['10.99.0.0/16'] },
  });
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

function v2(src: string, dst: string, sport: number, dport: number): Buffer {
  const header = Buffer.alloc(28);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(header);
  header[12] = 0x21; // version 2, PROXY
  header[13] = 0x11; // TCP over IPv4
  header.writeUInt16BE(12, 14);
  src.split('.').forEach((b, i) => {
    header[16 + i] = Number(b);
  });
  dst.split('.').forEach((b, i) => {
    header[20 + i] = Number(b);
  });
  header.writeUInt16BE(sport, 24);
  header.writeUInt16BE(dport, 26);
  return header;
}

async function relayAttempt(preamble: Buffer): Promise<{ rcpt: string; client: RawSmtp }> {
  const c = await RawSmtp.connect({ port: t.port, preamble });
  await c.cmd('EHLO exchange.corp.example.com');
  await c.cmd('MAIL FROM:<ceo@example.com>');
  return { rcpt: await c.cmd('RCPT TO:<partner@example.net>'), client: c };
}

describe('PROXY protocol', () => {
  test('v1: a trusted client address behind the balancer may relay, and is the one recorded', async () => {
    const { rcpt, client } = await relayAttempt(Buffer.from('PROXY TCP4 10.99.1.2 192.0.2.25 40000 25\r\n'));
    expect(rcpt).toMatch(/^250 /);
    const id = queueIdOf(await client.data(MESSAGE));
    expect((await t.spool.readMeta(id))?.client.ip).toBe('10.99.1.2');
    expect((await t.spool.readBody(id))?.toString('latin1')).toContain('(unknown [10.99.1.2])');
    client.destroy();
  });

  test('v1: an untrusted client address behind the balancer may not', async () => {
    const { rcpt, client } = await relayAttempt(
      Buffer.from('PROXY TCP4 203.0.113.9 192.0.2.25 40000 25\r\n'),
    );
    expect(rcpt).toBe('550 5.7.1 Relaying denied');
    client.destroy();
  });

  test('v2 (binary): the same decisions', async () => {
    const trusted = await relayAttempt(v2('10.99.3.4', '192.0.2.25', 40000, 25));
    expect(trusted.rcpt).toMatch(/^250 /);
    trusted.client.destroy();
    const untrusted = await relayAttempt(v2('198.51.100.7', '192.0.2.25', 40000, 25));
    expect(untrusted.rcpt).toBe('550 5.7.1 Relaying denied');
    untrusted.client.destroy();
  });

  test('a client that is not a trusted load balancer cannot claim an address with a PROXY header', async () => {
    const c = await RawSmtp.connect({
      port: t.port,
      greeting: false,
      localAddress: '127.0.0.5',
      preamble: Buffer.from('PROXY TCP4 10.99.1.2 192.0.2.25 40000 25\r\n'),
    });
    await expect(c.reply()).rejects.toThrow(/^connection closed/);
  });

  test('a connection without a PROXY header gets no session', async () => {
    const c = await RawSmtp.connect({
      port: t.port,
      greeting: false,
      preamble: Buffer.from('EHLO sneaky.example.net\r\n'),
    });
    expect(await c.reply()).not.toMatch(/^220 /);
    c.destroy();
  });
});

test('toV1 translates IPv6 and LOCAL headers', () => {
  const h = Buffer.alloc(16 + 36);
  Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]).copy(h);
  h[12] = 0x21;
  h[13] = 0x21;
  h.writeUInt16BE(36, 14);
  h.writeUInt16BE(0x2001, 16);
  h.writeUInt16BE(0x0db8, 18);
  h.writeUInt16BE(0x0001, 30);
  h.writeUInt16BE(40000, 48);
  h.writeUInt16BE(25, 50);
  expect(toV1(h)).toBe('PROXY TCP6 2001:db8:0:0:0:0:0:1 0:0:0:0:0:0:0:0 40000 25\r\n');
  h[12] = 0x20;
  expect(toV1(h)).toBe('PROXY UNKNOWN\r\n');
  h[12] = 0x11;
  expect(toV1(h)).toBeNull();
});
