import { expect, test } from 'vitest';
import { Counters, readCounters } from './counters.js';
import { keysFor } from './keys.js';
import { useRedis } from './test-redis.js';

const r = useRedis();

test('increments from two nodes add up in Redis; histograms are cumulative', async () => {
  const keys = keysFor('c1');
  const edge1 = new Counters(r.redis, keys);
  const edge2 = new Counters(r.redis, keys);
  edge1.inc('accepted');
  edge1.inc('accepted');
  edge2.inc('accepted', {}, 3);
  edge1.inc('rejected', { reason: 'relay-denied', extra: 'dropped' });
  edge2.inc('deliveries', { route: 'mx', result: 'delivered' });
  edge2.observe('deliveryLatency', { route: 'mx' }, 12);
  edge2.observe('deliveryLatency', { route: 'mx' }, 0.5);
  expect(await readCounters(r.redis, keys)).toEqual([]);
  await Promise.all([edge1.flush(), edge2.flush()]);
  await edge1.flush();

  const samples = await readCounters(r.redis, keys);
  const value = (name: string, labels: Record<string, string>) =>
    samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
  expect(value('moat_messages_accepted_total', {})).toBe(5);
  expect(value('moat_messages_rejected_total', { reason: 'relay-denied' })).toBe(1);
  expect(value('moat_deliveries_total', { route: 'mx', result: 'delivered' })).toBe(1);
  expect(value('moat_delivery_latency_seconds_bucket', { route: 'mx', le: '1' })).toBe(1);
  expect(value('moat_delivery_latency_seconds_bucket', { route: 'mx', le: '5' })).toBe(1);
  expect(value('moat_delivery_latency_seconds_bucket', { route: 'mx', le: '15' })).toBe(2);
  expect(value('moat_delivery_latency_seconds_bucket', { route: 'mx', le: '+Inf' })).toBe(2);
  expect(value('moat_delivery_latency_seconds_sum', { route: 'mx' })).toBe(12.5);
  expect(value('moat_delivery_latency_seconds_count', { route: 'mx' })).toBe(2);
});

test('a flush that fails keeps its increments for the next one', async () => {
  const keys = keysFor('c2');
  const counters = new Counters(r.redis, keys);
  // A key of the wrong type makes Redis refuse the increments.
  await r.redis.set(keys.metrics, 'not a hash');
  counters.inc('received');
  await expect(counters.flush()).rejects.toThrow();
  counters.inc('received');
  await r.redis.del(keys.metrics);
  await counters.flush();
  expect(await readCounters(r.redis, keys)).toEqual([
    { name: 'moat_messages_received_total', labels: {}, value: 2 },
  ]);
});
