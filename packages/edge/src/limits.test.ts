import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MESSAGE, startRedis, startTestEdge, type TestEdge } from './test-fixture.js';

let redis: RedisServer;
let t: TestEdge;

beforeAll(async () => {
  redis = await startRedis();
  t = await startTestEdge(redis, {
    smtp: {
      listen: ['127.0.0.1:2525'],
      maxMessageSize: '64KB',
      maxRecipients: 5,
      maxConnectionsPerClient: 3,
      maxErrors: 3,
    },
  });
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

async function session(): Promise<RawSmtp> {
  const c = await RawSmtp.connect({ port: t.port });
  await c.cmd('EHLO mx.example.net');
  return c;
}

describe('message size', () => {
  test('SIZE= above the limit is refused at MAIL', async () => {
    const c = await session();
    expect(await c.cmd(`MAIL FROM:<a@example.net> SIZE=${1024 * 1024}`)).toMatch(/^552 /);
    c.destroy();
  });

  test('a body that passes the limit while streaming: 552 5.3.4, nothing queued, session usable', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@example.com>');
    const before = await t.redis.zcard(t.spool.keys.messages);
    expect(await c.data(`Subject: big\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(1200))).toBe(
      '552 5.3.4 Message size exceeds fixed limit',
    );
    expect(await t.redis.zcard(t.spool.keys.messages)).toBe(before);
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@example.com>');
    expect(await c.data(MESSAGE)).toMatch(/^250 2\.0\.0/);
    c.destroy();
  });
});

test('recipients past smtp.maxRecipients get 452, the first ones are kept', async () => {
  const c = await session();
  await c.cmd('MAIL FROM:<a@example.net>');
  const replies: string[] = [];
  for (let i = 0; i < 8; i++) replies.push(await c.cmd(`RCPT TO:<user${i}@example.com>`));
  expect(replies.slice(0, 5).every((r) => r.startsWith('250 '))).toBe(true);
  expect(replies.slice(5).every((r) => r.startsWith('452 '))).toBe(true);
  expect(await c.data(MESSAGE)).toMatch(/^250 /);
  c.destroy();
});

test('connections per client past the limit get 421 4.7.0; a slot frees when one closes', async () => {
  const open = [
    await RawSmtp.connect({ port: t.port }),
    await RawSmtp.connect({ port: t.port }),
    await RawSmtp.connect({ port: t.port }),
  ];
  const fourth = await RawSmtp.connect({ port: t.port, greeting: false });
  expect(await fourth.reply()).toBe('421 4.7.0 Too many connections from your address, try again later');
  open[0]?.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const again = await RawSmtp.connect({ port: t.port, greeting: false });
  expect(await again.reply()).toMatch(/^220 /);
  for (const c of [...open, fourth, again]) c.destroy();
  // Let the edge see the closes before the next test connects (the per-client limit is 3).
  await expect.poll(() => t.edge.sessions(), { timeout: 5000 }).toBe(0);
});

test('too many refused commands close the session', async () => {
  const c = await session();
  await c.cmd('MAIL FROM:<a@example.net>');
  expect(await c.cmd('RCPT TO:<x@example.net>')).toMatch(/^550 /);
  expect(await c.cmd('RCPT TO:<y@example.net>')).toMatch(/^550 /);
  expect(await c.cmd('RCPT TO:<z@example.net>')).toMatch(/^550 /);
  expect(await c.reply()).toMatch(/^421 4\.7\.0 Too many errors/);
  await expect(c.reply()).rejects.toThrow(/^connection closed/);
});
