/**
 * The spool on a real Redis Cluster (3 primaries, 3 replicas, started by the test kit) through
 * redis-cluster://: mail in 16 partitions lands on every primary with each message's keys on
 * one node, workers take it from every partition, WAIT goes to the primary that holds the
 * message, and what must be asked of every primary (INFO memory, SCAN) is.
 */
import { execFileSync } from 'node:child_process';
import { type RedisCluster, startRedis, startRedisCluster } from '@moat/testkit';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connect, primariesOf, type RedisClient, whenReady } from './connection.js';
import { SpoolUnavailableError } from './errors.js';
import { memoryInfo } from './health.js';
import { partitionOfId } from './ids.js';
import { keysFor } from './keys.js';
import { RateLimits } from './rate-limits.js';
import { RecipientCache } from './recipient-cache.js';
import { routeStatus } from './routes.js';
import { Spool } from './spool.js';
import { searchMessageEvents } from './tracking.js';
import { startRouteWorker } from './workers.js';

let cluster: RedisCluster;
let producer: RedisClient;
let worker: RedisClient;
const client = { ip: '192.0.2.1', helo: 'mx.example.org', user: null, tls: false };

beforeAll(async () => {
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1, appendfsync: 'always' });
  const url = `redis-cluster://${cluster.seeds}`;
  producer = connect({ url, commandTimeout: 3000 }, 'producer');
  worker = connect({ url }, 'worker');
  await Promise.all([whenReady(producer, 10_000), whenReady(worker, 10_000)]);
}, 90_000);
afterAll(async () => {
  producer?.disconnect();
  worker?.disconnect();
  await cluster?.stop();
});

/** Keys matching `pattern` on one node (SCAN sees only the node's own keys). */
async function localKeys(node: ReturnType<typeof primariesOf>[number], pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

const spoolWith = (prefix: string, extra: Partial<ConstructorParameters<typeof Spool>[0]> = {}) =>
  new Spool({ redis: producer, prefix, partitions: 16, timeout: 3000, ack: 'local', replicas: 1, ...extra });

const send = (spool: Spool, i: number, routeId = 'mx') =>
  spool.enqueue({
    sender: `s${i}@example.org`,
    routes: [{ routeId, recipients: [`r${i}@example.net`] }],
    body: Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`),
    client,
  });

describe('on a Redis Cluster', () => {
  test('redis-cluster:// gives a Cluster client that knows all three primaries', () => {
    expect(producer).toBeInstanceOf(Cluster);
    expect(primariesOf(producer)).toHaveLength(3);
  });

  test('16 partitions put mail on every primary; a message is whole on one node', async () => {
    const spool = spoolWith('cl1');
    const metas = await Promise.all(Array.from({ length: 240 }, (_, i) => send(spool, i)));
    const bodiesPerPrimary = await Promise.all(
      primariesOf(producer).map(async (node) => (await localKeys(node, '{cl1:p*}:m:*:body')).length),
    );
    expect(bodiesPerPrimary.reduce((a, b) => a + b, 0)).toBe(240);
    // Even within ±15 % of 80 per primary would need far more mail; each holds a fair share.
    for (const count of bodiesPerPrimary) expect(count).toBeGreaterThan(40);
    // A message's body, meta, job set and BullMQ job are on the node that owns its partition.
    const m = metas[7];
    if (!m) throw new Error('no message');
    const k = spool.keysOf(m.id);
    const holders = await Promise.all(
      primariesOf(producer).map(async (node) => (await localKeys(node, `*${m.id}*`)).sort()),
    );
    const expected = [k.body(m.id), k.meta(m.id), k.jobs(m.id), k.job(k.queueName('mx'), `${m.id}-1`)].sort();
    expect(holders.filter((keys) => keys.length > 0)).toEqual([expected]);
    expect(await spool.readBody(m.id)).toEqual(Buffer.from('Subject: 7\r\n\r\nbody 7\r\n'));
    const events = await searchMessageEvents(spool, { limit: 500 });
    expect(events.filter((e) => e.type === 'received')).toHaveLength(240);
    expect((await routeStatus(spool, 'mx')).counts.waiting).toBe(240);

    // A worker per partition takes all of it.
    const done = new Set<string>();
    const workers = spool.partitions().map((p) =>
      startRouteWorker(
        spool.partitionKeys(p),
        'mx',
        async (job) => {
          await spool.release(job.data.messageId, String(job.id));
          done.add(job.data.messageId);
        },
        { connection: worker, concurrency: 4 },
      ),
    );
    await expect.poll(() => done.size, { timeout: 20_000 }).toBe(240);
    await Promise.all(workers.map((w) => w.close()));
    expect(new Set(metas.map((x) => partitionOfId(x.id))).size).toBe(16);
    for (const x of metas.slice(0, 20)) expect(await spool.readBody(x.id)).toBeNull();
    await spool.close();
  }, 60_000);

  test('ack: replicated WAITs on the primary that holds the message', async () => {
    const waits = async () =>
      Promise.all(
        primariesOf(producer).map(async (node) =>
          Number(/^cmdstat_wait:calls=(\d+)/m.exec(await node.info('commandstats'))?.[1] ?? 0),
        ),
      );
    const before = await waits();
    const spool = spoolWith('cl2', { ack: 'replicated', replicas: 1 });
    await Promise.all(Array.from({ length: 30 }, (_, i) => send(spool, i)));
    // Each primary got one WAIT per message it holds, and none for the others'.
    const held = await Promise.all(
      primariesOf(producer).map(async (node) => (await localKeys(node, '{cl2:p*}:m:*:body')).length),
    );
    const after = await waits();
    expect(held.reduce((a, b) => a + b, 0)).toBe(30);
    expect(after.map((n, i) => n - (before[i] ?? 0))).toEqual(held);
    // Asking two replicas of a primary that has one: refused, never acknowledged.
    const greedy = spoolWith('cl3', { ack: 'replicated', replicas: 2, timeout: 1000 });
    await expect(send(greedy, 1)).rejects.toThrow(SpoolUnavailableError);
    await Promise.all([spool.close(), greedy.close()]);
  });

  test('memory is that of the fullest primary; rate limits and the recipient cache work across slots', async () => {
    const info = await memoryInfo(producer);
    expect(info.policy).toBe('noeviction');
    expect(info.used).toBeGreaterThan(0);

    const keys = keysFor('cl4', 16);
    const limits = new RateLimits(producer, keys);
    const rate = { count: 3, perMs: 60_000 };
    const verdicts = [];
    for (let i = 0; i < 4; i++) verdicts.push(await limits.consume('msg', '198.51.100.7', rate));
    expect(verdicts).toEqual([true, true, true, false]);

    const cache = new RecipientCache(producer, keys);
    const addresses = Array.from({ length: 30 }, (_, i) => `user${i}@example.com`);
    await Promise.all(addresses.map((a) => cache.set(a, 'known', 60_000)));
    // The keys are on all three primaries, and listing and flushing find every one.
    const perNode = await Promise.all(
      primariesOf(producer).map(async (node) => (await node.keys('cl4:rcpt:*')).length),
    );
    expect(perNode.every((n) => n > 0)).toBe(true);
    expect((await cache.list('example.com')).map((e) => e.address).sort()).toEqual([...addresses].sort());
    expect(await cache.flush('example.com')).toBe(30);
    expect(await cache.list(null)).toEqual([]);
  });

  test('mail queued on one Redis, copied with redis-cli --cluster import, is read and delivered from partition 0', async () => {
    const single = await startRedis();
    const old = connect({ url: single.url }, 'producer');
    try {
      await whenReady(old);
      const before = new Spool({ redis: old, prefix: 'moved', timeout: 3000, ack: 'local', replicas: 1 });
      const metas = await Promise.all(Array.from({ length: 20 }, (_, i) => send(before, i)));
      await before.close();
      const [seed] = cluster.startupNodes;
      execFileSync(
        'redis-cli',
        [
          '--cluster',
          'import',
          `${seed?.host}:${seed?.port}`,
          '--cluster-from',
          `127.0.0.1:${single.port}`,
          '--cluster-copy',
        ],
        { stdio: 'pipe', timeout: 30_000 },
      );
      const after = spoolWith('moved');
      expect(after.partitions()).toContain(0);
      expect((await routeStatus(after, 'mx')).counts.waiting).toBe(20);
      expect(await after.readBody(metas[3]?.id ?? '')).toEqual(Buffer.from('Subject: 3\r\n\r\nbody 3\r\n'));
      const done = new Set<string>();
      const workers = after.partitions().map((p) =>
        startRouteWorker(
          after.partitionKeys(p),
          'mx',
          async (job) => {
            await after.release(job.data.messageId, String(job.id));
            done.add(job.data.messageId);
          },
          { connection: worker, concurrency: 2 },
        ),
      );
      await expect.poll(() => done.size, { timeout: 20_000 }).toBe(20);
      await Promise.all(workers.map((w) => w.close()));
      await after.close();
    } finally {
      old.disconnect();
      await single.stop();
    }
  }, 60_000);
});
