import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MESSAGE, queueIdOf, startRedis, startTestEdge, type TestEdge } from './test-fixture.js';

// Redis dies in the middle of a session: the client must get 4xx, never 250; when Redis is
// back, mail is accepted again without restarting Moat.
let redis: RedisServer;
let t: TestEdge;

beforeAll(async () => {
  redis = await startRedis({ appendfsync: 'always' });
  t = await startTestEdge(redis);
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

async function transaction(c: RawSmtp): Promise<string> {
  const mail = await c.cmd('MAIL FROM:<a@example.net>');
  if (!mail.startsWith('250')) return mail;
  const rcpt = await c.cmd('RCPT TO:<b@example.com>');
  if (!rcpt.startsWith('250')) return rcpt;
  return c.data(MESSAGE);
}

test('Redis killed mid-session: 451 4.3.0 at end of DATA; after restart, accepted again', async () => {
  const c = await RawSmtp.connect({ port: t.port });
  await c.cmd('EHLO mx.example.net');
  expect(await transaction(c)).toMatch(/^250 /);

  await c.cmd('MAIL FROM:<a@example.net>');
  await c.cmd('RCPT TO:<b@example.com>');
  expect(await c.cmd('DATA')).toMatch(/^354 /);
  await redis.kill();
  c.write(`${MESSAGE}.\r\n`);
  expect(await c.reply()).toBe('451 4.3.0 Temporary failure, please try again later');

  // Still down: every attempt is 4xx, never 250.
  for (let i = 0; i < 3; i++) expect(await transaction(c)).toMatch(/^4\d\d /);

  await redis.restart();
  let reply = '';
  for (let i = 0; i < 50 && !reply.startsWith('250'); i++) {
    await new Promise((r) => setTimeout(r, 100));
    reply = await transaction(c);
    expect(reply).toMatch(/^(250|4\d\d) /);
  }
  expect(reply).toMatch(/^250 2\.0\.0/);
  // The acknowledged message survived the kill (AOF, appendfsync always) and is complete.
  expect((await t.spool.readBody(queueIdOf(reply)))?.toString('latin1')).toContain(MESSAGE);
  c.destroy();
});

test('a hung Redis (SIGSTOP) is answered with 451 by the deadline, not left hanging', async () => {
  const c = await RawSmtp.connect({ port: t.port });
  await c.cmd('EHLO mx.example.net');
  await c.cmd('MAIL FROM:<a@example.net>');
  await c.cmd('RCPT TO:<b@example.com>');
  expect(await c.cmd('DATA')).toMatch(/^354 /);
  redis.pause();
  try {
    c.write(`${MESSAGE}.\r\n`);
    expect(await c.reply()).toBe('451 4.3.0 Temporary failure, please try again later');
  } finally {
    redis.resume();
  }
  c.destroy();
});

test('Redis memory past the threshold: 452 4.3.1 at MAIL, accepted again once it drops', async () => {
  const { MemoryGuard } = await import('@moat/spool');
  const guard = new MemoryGuard(t.redis, 0.5);
  const edge = await startTestEdge(redis, {}, { memory: guard });
  try {
    const used = Number(/used_memory:(\d+)/.exec(await t.redis.info('memory'))?.[1]);
    await t.redis.config('SET', 'maxmemory', String(Math.floor(used * 1.2)));
    await guard.check();
    const c = await RawSmtp.connect({ port: edge.port });
    await c.cmd('EHLO mx.example.net');
    expect(await c.cmd('MAIL FROM:<a@example.net>')).toBe(
      '452 4.3.1 Insufficient system storage, please try again later',
    );
    await t.redis.config('SET', 'maxmemory', '0');
    await guard.check();
    expect(await transaction(c)).toMatch(/^250 /);
    c.destroy();
  } finally {
    await t.redis.config('SET', 'maxmemory', '0');
    await edge.close();
  }
});

test('Redis memory fills while a session is in DATA: 452 4.3.1 at the end of DATA, nothing queued', async () => {
  const { MemoryGuard } = await import('@moat/spool');
  const guard = new MemoryGuard(t.redis, 0.5);
  const edge = await startTestEdge(redis, {}, { memory: guard });
  try {
    const c = await RawSmtp.connect({ port: edge.port });
    await c.cmd('EHLO mx.example.net');
    expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<bob@example.com>')).toMatch(/^250 /);
    expect(await c.cmd('DATA')).toMatch(/^354 /);
    const used = Number(/used_memory:(\d+)/.exec(await t.redis.info('memory'))?.[1]);
    await t.redis.config('SET', 'maxmemory', String(Math.floor(used * 1.2)));
    await guard.check();
    c.write(`${MESSAGE}.\r\n`);
    expect(await c.reply()).toBe('452 4.3.1 Insufficient system storage, please try again later');
    expect(await edge.spool.redis.zcard(edge.spool.keys.messages)).toBe(0);
    c.destroy();
  } finally {
    await t.redis.config('SET', 'maxmemory', '0');
    await edge.close();
  }
});
