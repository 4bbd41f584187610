import { expect, test } from 'vitest';
import { BodyCache } from './body-cache.js';

const body = (n: number, fill = 0x61) => Buffer.alloc(n, fill);

test('a body put is got until deleted; a message never put is a miss', () => {
  const cache = new BodyCache({ budget: 1000, ttl: 60_000 });
  expect(cache.put('m1', body(100))).toBe(true);
  expect(cache.get('m1')?.length).toBe(100);
  // A message with several jobs: each may read it.
  expect(cache.get('m1')?.length).toBe(100);
  expect(cache.get('m2')).toBeUndefined();
  expect([cache.hits, cache.misses]).toEqual([2, 1]);
  cache.delete('m1');
  expect(cache.get('m1')).toBeUndefined();
  expect(cache.bytes).toBe(0);
});

test('over the budget a new body is not admitted, and the older ones stay (they are delivered first)', () => {
  const cache = new BodyCache({ budget: 250, ttl: 60_000 });
  expect(cache.put('old1', body(100))).toBe(true);
  expect(cache.put('old2', body(100))).toBe(true);
  expect(cache.put('new', body(100))).toBe(false);
  expect(cache.get('old1')).toBeDefined();
  expect(cache.get('old2')).toBeDefined();
  expect(cache.get('new')).toBeUndefined();
  expect(cache.bytes).toBe(200);
  // Room again once one is delivered.
  cache.delete('old1');
  expect(cache.put('new', body(100))).toBe(true);
  expect(cache.bytes).toBe(200);
});

test('a body not taken within the ttl goes, and its bytes with it', () => {
  let now = 1_000;
  const cache = new BodyCache({ budget: 1000, ttl: 500, now: () => now });
  cache.put('a', body(100));
  now += 300;
  cache.put('b', body(100));
  now += 250; // a is 550 ms old, b 250 ms
  expect(cache.get('a')).toBeUndefined();
  expect(cache.get('b')).toBeDefined();
  expect(cache.bytes).toBe(100);
  // Without a put or get too (the delivery service calls it while idle).
  now += 500;
  cache.expire();
  expect(cache.bytes).toBe(0);
});

test('the same message put twice is kept once; a budget of 0 keeps nothing', () => {
  const cache = new BodyCache({ budget: 150, ttl: 60_000 });
  cache.put('a', body(100));
  expect(cache.put('a', body(100, 0x62))).toBe(true);
  expect(cache.bytes).toBe(100);
  expect(cache.get('a')?.[0]).toBe(0x61);
  const off = new BodyCache({ budget: 0, ttl: 60_000 });
  expect(off.put('a', body(1))).toBe(false);
});
