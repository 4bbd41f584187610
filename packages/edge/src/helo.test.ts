import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { BASE_CONFIG, startRedis, startTestEdge } from './test-fixture.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

async function mailAfter(port: number, helo: string): Promise<string> {
  const c = await RawSmtp.connect({ port });
  try {
    await c.cmd(`EHLO ${helo}`);
    return await c.cmd('MAIL FROM:<a@example.net>');
  } finally {
    c.destroy();
  }
}

test.each([
  [true, 'bad_name!', '501 5.5.2 Invalid HELO/EHLO name (a host name or an address literal)'],
  [true, 'localhost', '501 5.5.2 Invalid HELO/EHLO name (a host name or an address literal)'],
  [true, 'mx.example.net', '250 2.1.0 Accepted'],
  [true, '[192.0.2.1]', '250 2.1.0 Accepted'],
  // Off (the default): logged, not refused.
  [false, 'bad_name!', '250 2.1.0 Accepted'],
])('smtp.rejectInvalidHelo %s, EHLO %s: MAIL gets %s', async (reject, helo, reply) => {
  const t = await startTestEdge(redis, { smtp: { ...BASE_CONFIG.smtp, rejectInvalidHelo: reject } });
  try {
    expect(await mailAfter(t.port, helo)).toBe(reply);
  } finally {
    await t.close();
  }
});
