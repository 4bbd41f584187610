import { type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RedisClient } from './connection.js';
import { connect, whenReady } from './connection.js';
import { SpoolUnavailableError } from './errors.js';
import { assertNoEviction, MemoryGuard } from './health.js';
import { Heartbeat, liveNodes } from './heartbeat.js';
import { newMessageId } from './ids.js';
import { keysFor } from './keys.js';
import { pauseRoute, resumeRoute, routeStatus } from './routes.js';
import { BULLMQ_EVENTS_MAX, Spool } from './spool.js';
import { sweepOrphans } from './sweeper.js';
import { searchEvents } from './tracking.js';

let server: RedisServer;
let redis: RedisClient;
let n = 0;
// A fresh prefix per test: no test sees another's keys.
const fresh = (options: Partial<ConstructorParameters<typeof Spool>[0]> = {}) =>
  new Spool({ redis, prefix: `t${++n}`, timeout: 2000, ack: 'local', replicas: 1, ...options });

const client = { ip: '192.0.2.1', helo: 'mx.example.org', user: null, tls: false };

beforeAll(async () => {
  server = await startRedis({ appendfsync: 'always' });
  redis = connect({ url: server.url, commandTimeout: 2000 }, 'producer');
  await whenReady(redis);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

describe('enqueue', () => {
  test('a queued message is in Redis: body once, one job per route, a received event', async () => {
    const spool = fresh();
    const body = Buffer.from('Received: from x\r\nSubject: hi\r\n\r\nbody\r\n');
    const meta = await spool.enqueue({
      sender: 'alice@example.org',
      routes: [
        { routeId: '[192.168.1.254]', recipients: ['bob@example.com', 'carol@example.com'] },
        { routeId: 'mx', recipients: ['dave@example.net'] },
      ],
      body,
      client,
    });
    expect(await spool.readBody(meta.id)).toEqual(body);
    expect((await spool.readMeta(meta.id))?.sender).toBe('alice@example.org');
    const inbound = await spool.queue('[192.168.1.254]').getJob(`${meta.id}-1`);
    expect(inbound?.data).toMatchObject({
      messageId: meta.id,
      recipients: ['bob@example.com', 'carol@example.com'],
      attempts: 0,
    });
    const outbound = await spool.queue('mx').getJob(`${meta.id}-2`);
    expect(outbound?.data.recipients).toEqual(['dave@example.net']);
    expect(await spool.knownRoutes()).toEqual(expect.arrayContaining(['[192.168.1.254]', 'mx']));
    const events = await searchEvents(redis, spool.keys.events, { messageId: meta.id });
    expect(events).toEqual([
      expect.objectContaining({ type: 'received', sender: 'alice@example.org', size: body.length }),
    ]);
    // The body is written with a claim expiry that the message script removes: it is permanent.
    expect(await redis.pttl(spool.keys.body(meta.id))).toBe(-1);
    await spool.close();
  });

  test('a body Redis refuses to write commits nothing: no metadata, index entry or event', async () => {
    const spool = fresh();
    const prefix = spool.keys.root;
    // A user who may do everything but SET, the command that writes a message body.
    await redis.call('ACL', 'SETUSER', 'no-bodies', 'on', '>pw', '~*', '&*', '+@all', '-set');
    const limited = connect({ url: server.url.replace('redis://', 'redis://no-bodies:pw@') }, 'producer');
    await whenReady(limited);
    const refused = new Spool({
      redis: limited,
      prefix: prefix.slice(1, -1),
      timeout: 2000,
      ack: 'local',
      replicas: 1,
    });
    const id = newMessageId();
    await expect(
      refused.enqueue({
        id,
        sender: 'a@example.org',
        routes: [{ routeId: 'mx', recipients: ['b@example.net'] }],
        body: Buffer.from('x'),
        client,
      }),
    ).rejects.toThrow(/NOPERM|body is missing/);
    expect(await redis.exists(spool.keys.body(id), spool.keys.meta(id), spool.keys.jobs(id))).toBe(0);
    expect(await redis.zscore(spool.keys.messages, id)).toBeNull();
    expect(await searchEvents(redis, spool.keys.events, { messageId: id })).toEqual([]);
    await refused.close();
    limited.disconnect();
    await spool.close();
  });

  test('the body goes when the last job releases it, and release is idempotent', async () => {
    const spool = fresh();
    const meta = await spool.enqueue({
      sender: '',
      routes: [
        { routeId: 'a', recipients: ['x@a.example'] },
        { routeId: 'b', recipients: ['y@b.example'] },
      ],
      body: Buffer.from('x'),
      client,
    });
    expect(await spool.release(meta.id, `${meta.id}-1`)).toBe(false);
    expect(await spool.release(meta.id, `${meta.id}-1`)).toBe(false);
    expect(await spool.readBody(meta.id)).not.toBeNull();
    expect(await spool.release(meta.id, `${meta.id}-2`)).toBe(true);
    expect(await spool.readBody(meta.id)).toBeNull();
    expect(await redis.exists(spool.keys.meta(meta.id), spool.keys.jobs(meta.id))).toBe(0);
    expect(await redis.zscore(spool.keys.messages, meta.id)).toBeNull();
    await spool.close();
  });

  test("BullMQ's own events stream, which Moat never reads, stays capped near BULLMQ_EVENTS_MAX", async () => {
    const spool = fresh();
    const queue = spool.queue('[192.168.1.254]');
    for (let i = 0; i < 400; i++)
      await spool.enqueue({
        sender: 'alice@example.org',
        routes: [{ routeId: '[192.168.1.254]', recipients: ['bob@example.com'] }],
        body: Buffer.from(`Subject: ${i}\r\n\r\nbody\r\n`),
        client,
      });
    // Each job writes "added" and "waiting": 800 events; XADD MAXLEN ~ trims whole nodes, so a
    // little more than the cap may stay, never the 800 (nor BullMQ's default 10,000).
    expect(await redis.hget(queue.toKey('meta'), 'opts.maxLenEvents')).toBe(String(BULLMQ_EVENTS_MAX));
    const length = await redis.xlen(queue.toKey('events'));
    expect(length).toBeGreaterThan(0);
    expect(length).toBeLessThanOrEqual(BULLMQ_EVENTS_MAX * 3);
    await spool.close();
  });

  test('a hung Redis makes enqueue fail with SpoolUnavailableError by the deadline, not hang', async () => {
    const spool = fresh({ timeout: 300 });
    server.pause();
    const started = Date.now();
    try {
      await expect(
        spool.enqueue({
          sender: 'a@b.example',
          routes: [{ routeId: 'r', recipients: ['c@d.example'] }],
          body: Buffer.from('x'),
          client,
        }),
      ).rejects.toBeInstanceOf(SpoolUnavailableError);
      expect(Date.now() - started).toBeLessThan(1500);
    } finally {
      server.resume();
    }
    await spool.close();
  });
});

describe('route control', () => {
  test('pause holds jobs for every node, resume releases them; the flag lives in Redis', async () => {
    const spool = fresh();
    await pauseRoute(spool, '[10.0.0.5]');
    const other = new Spool({ redis, prefix: `t${n}`, timeout: 2000, ack: 'local', replicas: 1 });
    expect((await routeStatus(other, '[10.0.0.5]')).paused).toBe(true);
    await spool.enqueue({
      sender: 'a@b.example',
      routes: [{ routeId: '[10.0.0.5]', recipients: ['c@d.example'] }],
      body: Buffer.from('x'),
      client,
    });
    expect((await routeStatus(other, '[10.0.0.5]')).counts.waiting).toBe(1);
    await resumeRoute(other, '[10.0.0.5]');
    expect((await routeStatus(spool, '[10.0.0.5]')).paused).toBe(false);
    await Promise.all([spool.close(), other.close()]);
  });
});

describe('health', () => {
  test('refuses a Redis that may evict keys, saying what to change', async () => {
    await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
    try {
      await expect(assertNoEviction(redis)).rejects.toThrow(/maxmemory-policy is "allkeys-lru".*noeviction/);
    } finally {
      await redis.config('SET', 'maxmemory-policy', 'noeviction');
    }
    await expect(assertNoEviction(redis)).resolves.toBeUndefined();
  });

  test('MemoryGuard reports full past the threshold', async () => {
    const guard = new MemoryGuard(redis, 0.5);
    await redis.config('SET', 'maxmemory', '0');
    expect(await guard.check()).toBe(false);
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    await redis.config('SET', 'maxmemory', String(Math.floor(used * 1.5)));
    try {
      expect(await guard.check()).toBe(true);
      expect(guard.full).toBe(true);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
    expect(await guard.check()).toBe(false);
  });

  test('MemoryGuard counts what this process queued since its last read', async () => {
    const guard = new MemoryGuard(redis, 0.9);
    const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    await redis.config('SET', 'maxmemory', String(Math.floor(used * 1.25)));
    try {
      expect(await guard.check()).toBe(false);
      // 0.8 of maxmemory used; a tenth of it more queued here passes 0.9 before any new read.
      guard.note(Math.floor(used * 0.15));
      expect(guard.full).toBe(true);
      // The next read sees what Redis really holds (nothing was written): room again.
      expect(await guard.check()).toBe(false);
      expect(guard.full).toBe(false);
    } finally {
      await redis.config('SET', 'maxmemory', '0');
    }
  });
});

test('the sweeper removes bodies with no job after the grace period, and only those', async () => {
  const spool = fresh();
  const keys = keysFor(`t${n}`);
  const live = await spool.enqueue({
    sender: 'a@b.example',
    routes: [{ routeId: 'r', recipients: ['c@d.example'] }],
    body: Buffer.from('x'),
    client,
  });
  // An orphan: written as the first half of enqueue would, but its job never added.
  const orphan = newMessageId();
  await redis
    .multi()
    .set(keys.body(orphan), 'x')
    .hset(
      keys.meta(orphan),
      'json',
      JSON.stringify({ id: orphan, routes: [{ routeId: 'r', jobId: `${orphan}-1`, recipients: [] }] }),
    )
    .sadd(keys.jobs(orphan), `${orphan}-1`)
    .zadd(keys.messages, String(Date.now() - 60_000), orphan)
    .exec();
  expect((await sweepOrphans(redis, keys, 3_600_000)).deleted).toEqual([]);
  const result = await sweepOrphans(redis, keys, 0, Date.now() + 1);
  expect(result.deleted).toEqual([orphan]);
  expect(await redis.exists(keys.body(orphan))).toBe(0);
  expect(await spool.readBody(live.id)).not.toBeNull();
  await spool.close();
});

test('heartbeats list live nodes and drop stopped ones', async () => {
  const keys = keysFor(`t${++n}`);
  const info = {
    id: 'edge-1',
    hostname: 'h',
    pid: 1,
    roles: ['edge'],
    version: '0.1.0',
    startedAt: Date.now(),
  };
  const hb = new Heartbeat(redis, keys, () => info, 1000);
  await hb.beat();
  expect((await liveNodes(redis, keys)).map((x) => x.id)).toEqual(['edge-1']);
  await hb.stop();
  expect(await liveNodes(redis, keys)).toEqual([]);
});

test('tracking search by sender, recipient and domain, newest first', async () => {
  const spool = fresh();
  for (const [sender, rcpt] of [
    ['a@x.example', 'one@example.com'],
    ['b@x.example', 'two@example.org'],
    ['a@x.example', 'three@example.org'],
  ] as const) {
    await spool.enqueue({
      sender,
      routes: [{ routeId: 'r', recipients: [rcpt] }],
      body: Buffer.from('x'),
      client,
    });
  }
  const bySender = await searchEvents(redis, spool.keys.events, { sender: 'A@x.example' });
  expect(bySender.map((e) => e.recipients?.[0])).toEqual(['three@example.org', 'one@example.com']);
  const byDomain = await searchEvents(redis, spool.keys.events, { recipient: '@example.org' });
  expect(byDomain).toHaveLength(2);
  expect(await searchEvents(redis, spool.keys.events, { recipient: 'two@example.org' })).toHaveLength(1);
  await spool.close();
});
