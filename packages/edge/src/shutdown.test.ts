import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MESSAGE, startRedis, startTestEdge } from './test-fixture.js';

let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

test('graceful close: idle sessions get 421 at once, a session in DATA finishes with 250, new connections are refused', async () => {
  const t = await startTestEdge(redis);
  const idle = await RawSmtp.connect({ port: t.port });
  await idle.cmd('EHLO idle.example.net');
  const busy = await RawSmtp.connect({ port: t.port });
  await busy.cmd('EHLO busy.example.net');
  await busy.cmd('MAIL FROM:<a@example.net>');
  await busy.cmd('RCPT TO:<b@example.com>');
  expect(await busy.cmd('DATA')).toMatch(/^354 /);
  busy.write('Subject: half\r\n\r\nfirst half\r\n');

  const closing = t.edge.close(5000);
  expect(await idle.reply()).toBe('421 4.3.2 Service shutting down, try again later');
  await new Promise((r) => setTimeout(r, 100));
  busy.write(`${MESSAGE}.\r\n`);
  expect(await busy.reply()).toMatch(/^250 2\.0\.0 Ok: queued as/);
  expect(await busy.reply()).toBe('421 4.3.2 Service shutting down, try again later');
  await closing;
  await expect(RawSmtp.connect({ port: t.port })).rejects.toThrow(/ECONNREFUSED/);
  await t.spool.close();
  t.redis.disconnect();
});
