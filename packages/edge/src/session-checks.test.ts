/**
 * The session checks' Redis failures as a client sees them: a rate limit that cannot be
 * counted (Redis refuses the limiter's commands, or hangs) is 451 4.3.0 at MAIL and RCPT,
 * never a pass (250) nor a refusal (4.7.1 or 5xx). The checker here counts with the real
 * RateLimits of @moat/spool in a real redis-server, as @moat/filters' sessionChecker does.
 */
import { type LimitName, type Rate, rateLimited } from '@moat/policy';
import { connect, keysFor, RateLimits, type RedisClient, whenReady } from '@moat/spool';
import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CheckRefusal, SessionChecker } from './session-checks.js';
import { startRedis, startTestEdge, type TestEdge } from './test-fixture.js';

const TEMP_FAILURE = '451 4.3.0 Temporary failure, please try again later';

let redis: RedisServer;
let admin: RedisClient;
beforeAll(async () => {
  redis = await startRedis();
  admin = connect({ url: redis.url }, 'producer');
  await whenReady(admin);
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});

let prefixes = 0;

/** Messages per client at MAIL, recipients per client at RCPT, counted in Redis. */
function limitChecker(limits: RateLimits, rate: Rate): SessionChecker {
  const limit = async (name: LimitName, key: string): Promise<CheckRefusal | null> =>
    (await limits.consume(name, key, rate))
      ? null
      : { reply: rateLimited(name, rate), reason: `rate:${name}` };
  return {
    open: (session) => ({
      connect: async () => null,
      mail: () => limit('client-messages', session.clientIp),
      rcpt: () => limit('user-recipients', session.clientIp),
      close() {},
    }),
  };
}

/** An edge whose rate limits count through `client`. */
async function edgeCountingWith(client: RedisClient, rate: Rate = { count: 1000, perMs: 60_000 }) {
  const limits = new RateLimits(client, keysFor(`sc${++prefixes}`));
  return startTestEdge(redis, {}, { checker: limitChecker(limits, rate) });
}

async function session(t: TestEdge): Promise<RawSmtp> {
  const c = await RawSmtp.connect({ port: t.port });
  await c.cmd('EHLO mx.example.net');
  return c;
}

describe('rate limits when Redis fails', () => {
  test('counted in Redis: over the limit is 450 4.7.1 (the checker really counts)', async () => {
    const t = await edgeCountingWith(admin, { count: 1, perMs: 60_000 });
    try {
      const c = await session(t);
      expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^250 /);
      expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250 /);
      expect(await c.cmd('RCPT TO:<c@example.com>')).toMatch(/^450 4\.7\.1 Rate limit exceeded/);
      expect(await c.cmd('RSET')).toMatch(/^250 /);
      expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^450 4\.7\.1 Rate limit exceeded/);
      c.destroy();
    } finally {
      await t.close();
    }
  });

  test('Redis refuses the limiter its commands (ACL): 451 at MAIL and at RCPT, never 250 nor 5xx', async () => {
    await admin.call('ACL', 'SETUSER', 'limiter', 'on', '>pw', '~*', '&*', '+@all');
    const limited = connect({ url: redis.url.replace('redis://', 'redis://limiter:pw@') }, 'producer');
    await whenReady(limited);
    const t = await edgeCountingWith(limited);
    try {
      const c = await session(t);
      expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^250 /);
      // Scripts, what rate-limiter-flexible counts with, are taken away mid-transaction.
      await admin.call('ACL', 'SETUSER', 'limiter', '-@scripting');
      expect(await c.cmd('RCPT TO:<b@example.com>')).toBe(TEMP_FAILURE);
      expect(await c.cmd('RSET')).toMatch(/^250 /);
      expect(await c.cmd('MAIL FROM:<a@example.net>')).toBe(TEMP_FAILURE);
      // A temporary failure: the session goes on, and mail is taken once Redis counts again.
      await admin.call('ACL', 'SETUSER', 'limiter', '+@scripting');
      expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^250 /);
      expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250 /);
      c.destroy();
    } finally {
      await t.close();
      limited.disconnect();
      await admin.call('ACL', 'DELUSER', 'limiter');
    }
  });

  test('a hung Redis (SIGSTOP) while counting: 451 at MAIL and at RCPT by the command deadline', async () => {
    // A Redis of its own, so that the spool's Redis stays up: only the limit cannot be counted.
    const counters = await startRedis();
    const client = connect({ url: counters.url, commandTimeout: 500 }, 'producer');
    await whenReady(client);
    const t = await edgeCountingWith(client);
    try {
      const c = await session(t);
      expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^250 /);
      counters.pause();
      try {
        expect(await c.cmd('RCPT TO:<b@example.com>')).toBe(TEMP_FAILURE);
        expect(await c.cmd('RSET')).toMatch(/^250 /);
        expect(await c.cmd('MAIL FROM:<a@example.net>')).toBe(TEMP_FAILURE);
      } finally {
        counters.resume();
      }
      c.destroy();
    } finally {
      await t.close();
      client.disconnect();
      await counters.stop();
    }
  });
});
