import { expect, test } from 'vitest';
import { keysFor, MAX_PARTITIONS, partitionKeys, partitionTag, slotOf } from './keys.js';

const SLOTS = 16_384;

/** How many of the first `n` partitions' slots fall into each of `shards` equal slot ranges. */
function spread(n: number, shards: number): number[] {
  const counts: number[] = Array.from({ length: shards }, () => 0);
  for (let p = 1; p <= n; p++) {
    const slot = slotOf(`{${partitionTag('moat', p)}}`);
    const shard = Math.min(shards - 1, Math.floor(slot / Math.ceil(SLOTS / shards)));
    counts[shard] = (counts[shard] ?? 0) + 1;
  }
  return counts;
}

test('partition 0 is the {prefix} layout of a single Redis, unchanged', () => {
  const k = keysFor('moat');
  expect(k.root).toBe('{moat}');
  expect(k.body('X')).toBe('{moat}:m:X:body');
  expect(k.messages).toBe('{moat}:messages');
  expect(k.rateLimit('conn')).toBe('{moat}:rl:conn');
  expect(k.recipient('Bob@Example.COM')).toBe('{moat}:rcpt:example.com:bob');
  expect(partitionKeys('moat', 0).body('X')).toBe(k.body('X'));
  expect(partitionKeys('moat', 0).partition).toBe(0);
});

test("every key of a partition's message is in that partition's slot", () => {
  for (const p of [1, 7, 64, MAX_PARTITIONS]) {
    const k = partitionKeys('moat', p);
    const slot = slotOf(k.root);
    const keys = [
      k.body('ID'),
      k.meta('ID'),
      k.jobs('ID'),
      k.messages,
      k.events,
      k.delayed('mx'),
      k.job(k.queueName('mx'), 'ID-1'),
      // BullMQ's own keys are the prefix, the queue name and a suffix.
      `${k.root}:${k.queueName('[192.168.1.254]')}:wait`,
    ];
    expect(keys.map(slotOf)).toEqual(keys.map(() => slot));
  }
});

test('partition tags do not depend on how many partitions there are, and are all different slots', () => {
  const tags = Array.from({ length: 64 }, (_, i) => partitionTag('moat', i + 1));
  expect(tags[6]).toMatch(/^moat:p7(\.\d+)?$/);
  expect(new Set(tags.map((t) => slotOf(`{${t}}`))).size).toBe(64);
  expect(partitionTag('moat', 7)).toBe(tags[6]);
  expect(partitionTag('other', 7)).not.toBe(tags[6]);
});

test('the first N partitions split evenly over shards with even slot ranges', () => {
  expect(spread(16, 2)).toEqual([8, 8]);
  expect(spread(16, 4)).toEqual([4, 4, 4, 4]);
  // 16 over 3 shards: 6/5/5, within 13 % of even; 48 and 64: within 4 %.
  for (const [n, shards] of [
    [16, 3],
    [48, 3],
    [64, 3],
    [64, 6],
  ] as const) {
    const even = n / shards;
    for (const count of spread(n, shards)) expect(Math.abs(count - even) / even).toBeLessThanOrEqual(0.15);
  }
});

test('with partitions, per-message single-key state has no hash tag (a cluster spreads it)', () => {
  const k = keysFor('moat', 16);
  expect(k.root).toBe('{moat}');
  expect(k.nodes).toBe('{moat}:nodes');
  expect(k.rateLimit('conn')).toBe('moat:rl:conn');
  expect(k.greylist('1.2.3|a|b')).toMatch(/^moat:grey:/);
  expect(k.recipient('bob@example.com')).toBe('moat:rcpt:example.com:bob');
  expect(k.recipientPattern('example.com')).toBe('moat:rcpt:example.com:*');
});
