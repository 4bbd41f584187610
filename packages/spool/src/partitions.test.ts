/**
 * Queue partitions on one real Redis: where mail is placed, that each message stays in its
 * partition's slot, and that every reader (body, tracking, listing, counts, pause, the
 * sweeper) sees all partitions, including those another spool placed mail in.
 */
import { afterAll, describe, expect, test } from 'vitest';
import { partitionOfId } from './ids.js';
import { slotOf } from './keys.js';
import { routeFigures } from './metrics-data.js';
import { actOnMessage } from './queue-actions.js';
import { listJobs, oldestJobs } from './queue-list.js';
import { messageDetails } from './queue-message.js';
import { pauseRoute, resumeRoute, routeStatus } from './routes.js';
import { Spool } from './spool.js';
import { sweepOrphans } from './sweeper.js';
import { useRedis } from './test-redis.js';
import { searchMessageEvents } from './tracking.js';

const r = useRedis();
let n = 0;
const spools: Spool[] = [];
const spoolWith = (partitions: number, prefix = `pt${++n}`) => {
  const spool = new Spool({ redis: r.redis, prefix, partitions, timeout: 2000, ack: 'local', replicas: 1 });
  spools.push(spool);
  return spool;
};
afterAll(async () => {
  for (const s of spools) await s.close();
});

const client = { ip: '192.0.2.1', helo: 'mx.example.org', user: null, tls: false };
const send = (spool: Spool, i: number, routeId = 'mx') =>
  spool.enqueue({
    sender: `s${i}@example.org`,
    routes: [{ routeId, recipients: [`r${i}@example.net`] }],
    body: Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`),
    client,
  });

describe('placement', () => {
  test('new mail spreads over partitions 1…N; every key of a message is in its partition', async () => {
    const spool = spoolWith(4);
    const metas = await Promise.all(Array.from({ length: 200 }, (_, i) => send(spool, i)));
    const byPartition = new Map<number, number>();
    for (const m of metas)
      byPartition.set(partitionOfId(m.id), (byPartition.get(partitionOfId(m.id)) ?? 0) + 1);
    expect([...byPartition.keys()].sort()).toEqual([1, 2, 3, 4]);
    for (const count of byPartition.values()) expect(count).toBeGreaterThan(25);

    const m = metas[0];
    if (!m) throw new Error('no message');
    const k = spool.keysOf(m.id);
    expect(k.partition).toBe(partitionOfId(m.id));
    // The keys Redis actually has for the message (and its BullMQ job) are all in one slot.
    const written = await r.redis.keys(`${k.root}*${m.id}*`);
    expect(written.length).toBeGreaterThanOrEqual(4);
    expect(new Set([...written, k.messages, k.events].map(slotOf)).size).toBe(1);
    expect(await spool.readBody(m.id)).toEqual(Buffer.from('Subject: 0\r\n\r\nbody 0\r\n'));
    expect((await spool.readMeta(m.id))?.sender).toBe('s0@example.org');
    expect(await spool.release(m.id, `${m.id}-1`)).toBe(true);
    expect(await spool.readBody(m.id)).toBeNull();
  });

  test('one partition keeps the single-Redis layout: ids without a partition, keys in {prefix}', async () => {
    const spool = spoolWith(1);
    const m = await send(spool, 1);
    expect(partitionOfId(m.id)).toBe(0);
    expect(m.id).toMatch(/^[0-9A-Z]{20}$/);
    expect(await r.redis.exists(`${spool.keys.root}:m:${m.id}:body`)).toBe(1);
  });
});

describe('reading across partitions', () => {
  test('tracking, listing, counts, details and actions see every partition', async () => {
    const spool = spoolWith(8);
    const metas = [];
    for (let i = 0; i < 40; i++) metas.push(await send(spool, i, '[192.0.2.25]'));
    const events = await searchMessageEvents(spool, { limit: 100 });
    expect(events.filter((e) => e.type === 'received')).toHaveLength(40);
    // Newest first, merged across partitions.
    expect(events.map((e) => e.time)).toEqual(
      [...events.map((e) => e.time)].sort((a, b) => (b ?? 0) - (a ?? 0)),
    );
    expect(await searchMessageEvents(spool, { sender: 's7@example.org' })).toHaveLength(1);

    const page = await listJobs(spool, { routeId: '[192.0.2.25]', state: 'waiting', limit: 500 });
    expect(page.total).toBe(40);
    expect(new Set(page.jobs.map((j) => j.messageId))).toEqual(new Set(metas.map((m) => m.id)));
    // Waiting jobs oldest first, whatever partition they are in.
    expect(page.jobs.map((j) => j.queuedAt)).toEqual(
      [...page.jobs.map((j) => j.queuedAt)].sort((a, b) => a - b),
    );
    const second = await listJobs(spool, { routeId: '[192.0.2.25]', state: 'waiting', offset: 10, limit: 5 });
    expect(second.jobs.map((j) => j.jobId)).toEqual(page.jobs.slice(10, 15).map((j) => j.jobId));

    const oldest = await oldestJobs(spool, { state: 'waiting', limit: 3 });
    // The three oldest (messages of the same millisecond may come in either order).
    expect(oldest.map((j) => j.queuedAt)).toEqual(metas.slice(0, 3).map((m) => m.receivedAt));

    const status = await routeStatus(spool, '[192.0.2.25]');
    expect(status.counts.waiting).toBe(40);
    const [figures] = await routeFigures(spool, []);
    expect(figures?.counts.waiting).toBe(40);
    expect(figures?.oldestQueuedAt).toBe(metas[0]?.receivedAt);

    const target = metas[5];
    if (!target) throw new Error('no message');
    const details = await messageDetails(spool, target.id);
    expect(details?.jobs).toEqual([expect.objectContaining({ state: 'waiting', jobId: `${target.id}-1` })]);
    expect(details?.events.map((e) => e.type)).toEqual(['received']);
    const [held] = await actOnMessage(spool, target.id, 'hold');
    expect(held?.state).toBe('held');
    const [deleted] = await actOnMessage(spool, target.id, 'delete');
    expect(deleted?.state).toBe('done');
    expect(await spool.readBody(target.id)).toBeNull();
    expect((await routeStatus(spool, '[192.0.2.25]')).counts.waiting).toBe(39);
  });

  test('pause and resume act on the route in every partition', async () => {
    const spool = spoolWith(4);
    await send(spool, 1, 'paused-route');
    await pauseRoute(spool, 'paused-route');
    const paused = await Promise.all(
      spool.partitions().map((p) => spool.queue('paused-route', p).isPaused()),
    );
    expect(paused).toEqual([true, true, true, true, true]);
    expect((await routeStatus(spool, 'paused-route')).paused).toBe(true);
    await resumeRoute(spool, 'paused-route');
    const resumed = await Promise.all(
      spool.partitions().map((p) => spool.queue('paused-route', p).isPaused()),
    );
    expect(resumed).toEqual([false, false, false, false, false]);
  });

  test('a spool with fewer partitions still reads every partition another spool placed mail in', async () => {
    const prefix = `pt${++n}`;
    const wide = spoolWith(16, prefix);
    const metas = await Promise.all(Array.from({ length: 50 }, (_, i) => send(wide, i)));
    const narrow = spoolWith(2, prefix);
    expect(narrow.partitions()).toEqual([0, 1, 2]);
    expect(await narrow.refreshLayout(true)).toHaveLength(17);
    expect((await routeStatus(narrow, 'mx')).counts.waiting).toBe(50);
    // It still places only in its own partitions (and says so in the layout it leaves alone).
    const placed = await Promise.all(Array.from({ length: 20 }, (_, i) => send(narrow, 100 + i)));
    expect(placed.every((m) => [1, 2].includes(partitionOfId(m.id)))).toBe(true);
    expect(await narrow.refreshLayout(true)).toHaveLength(17);
    expect(metas).toHaveLength(50);
  });

  test('the orphan sweeper, partition by partition, deletes only messages without a job', async () => {
    const spool = spoolWith(4);
    const kept = await send(spool, 1);
    const orphan = await send(spool, 2);
    await spool.queueOfJob('mx', `${orphan.id}-1`).remove(`${orphan.id}-1`);
    const deleted: string[] = [];
    for (const p of spool.partitions()) {
      const result = await sweepOrphans(r.redis, spool.partitionKeys(p), 0, Date.now() + 1);
      deleted.push(...result.deleted);
    }
    expect(deleted).toEqual([orphan.id]);
    expect(await spool.readBody(kept.id)).not.toBeNull();
  });
});
