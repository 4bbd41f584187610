/** Rate limits, greylisting and the recipient cache against a real Redis, as two edges see them. */
import { expect, test } from 'vitest';
import { connect, whenReady } from './connection.js';
import { Greylist } from './greylist.js';
import { keysFor } from './keys.js';
import { RateLimits } from './rate-limits.js';
import { RecipientCache } from './recipient-cache.js';
import { useRedis } from './test-redis.js';

const r = useRedis();

test('two edges (two connections) count one limit together', async () => {
  const other = connect({ url: r.server.url }, 'producer');
  await whenReady(other);
  try {
    const keys = keysFor('rl1');
    const edge1 = new RateLimits(r.redis, keys);
    const edge2 = new RateLimits(other, keys);
    const rate = { count: 5, perMs: 60_000 };
    const results: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      results.push(await edge1.consume('client-messages', '192.0.2.1', rate));
      results.push(await edge2.consume('client-messages', '192.0.2.1', rate));
    }
    expect(results).toEqual([true, true, true, true, true, false, false, false]);
    // Another client, and another limit, count apart.
    expect(await edge1.consume('client-messages', '192.0.2.2', rate)).toBe(true);
    expect(await edge1.consume('client-connections', '192.0.2.1', rate)).toBe(true);
    // Several points at once (recipients of one message).
    expect(await edge2.consume('user-recipients', 'alice', rate, 5)).toBe(true);
    expect(await edge2.consume('user-recipients', 'alice', rate, 1)).toBe(false);
    expect((await r.redis.keys('{rl1}:rl:*')).length).toBeGreaterThan(0);
  } finally {
    other.disconnect();
  }
});

test('a window ends: the count starts again', async () => {
  const limits = new RateLimits(r.redis, keysFor('rl2'));
  const rate = { count: 1, perMs: 1000 };
  expect(await limits.consume('client-connections', 'c', rate)).toBe(true);
  expect(await limits.consume('client-connections', 'c', rate)).toBe(false);
  await new Promise((done) => setTimeout(done, 1100));
  expect(await limits.consume('client-connections', 'c', rate)).toBe(true);
});

test('Redis gone: consume rejects (the edge answers 451), it neither passes nor refuses', async () => {
  const dead = connect({ url: 'redis://127.0.0.1:1', commandTimeout: 500 }, 'producer');
  try {
    await expect(
      new RateLimits(dead, keysFor('rl3')).consume('client-messages', 'x', { count: 5, perMs: 60_000 }),
    ).rejects.toThrow();
  } finally {
    dead.disconnect();
  }
});

test('greylisting: first try waits, an early retry waits for the rest, a later one passes and keeps passing', async () => {
  const grey = new Greylist(r.redis, keysFor('g1'));
  const other = new Greylist(r.redis, keysFor('g1'));
  const times = { delay: 300_000, retryWindow: 86_400_000, passLifetime: 36 * 86_400_000 };
  const t0 = 1_800_000_000_000;
  const triplet = '192.0.2.0/24|alice@example.net|bob@example.com';
  expect(await grey.check(triplet, times, t0)).toBe(300_000);
  expect(await other.check(triplet, times, t0 + 60_000)).toBe(240_000);
  expect(await other.check(triplet, times, t0 + 300_000)).toBe(0);
  expect(await grey.check(triplet, times, t0 + 400_000)).toBe(0);
  const ttl = await r.redis.pttl(keysFor('g1').greylist(triplet));
  expect(ttl).toBeGreaterThan(35 * 86_400_000);
  // Another recipient is a triplet of its own.
  expect(await grey.check('192.0.2.0/24|alice@example.net|carol@example.com', times, t0 + 400_000)).toBe(
    300_000,
  );
});

test('recipient cache: set with TTL, list and flush by address and by domain', async () => {
  const cache = new RecipientCache(r.redis, keysFor('rc1'));
  await cache.set('Alice@Example.com', 'known', 7 * 86_400_000);
  await cache.set('bob@example.com', 'unknown', 7_200_000);
  await cache.set('carol@example.org', 'known', 60_000);
  expect(await cache.get('alice@EXAMPLE.COM')).toBe('known');
  expect(await cache.get('bob@example.com')).toBe('unknown');
  expect(await cache.get('dave@example.com')).toBeNull();
  expect((await cache.list('example.com')).map((e) => [e.address, e.verdict])).toEqual([
    ['alice@example.com', 'known'],
    ['bob@example.com', 'unknown'],
  ]);
  const [carol] = await cache.list('carol@example.org');
  expect(carol?.ttlMs).toBeGreaterThan(50_000);
  expect((await cache.list(null)).length).toBe(3);
  expect(await cache.flush('bob@example.com')).toBe(1);
  expect(await cache.flush('example.com')).toBe(1);
  expect((await cache.list(null)).map((e) => e.address)).toEqual(['carol@example.org']);
  // A domain that is a glob is taken literally.
  expect(await cache.flush('*')).toBe(0);
});
