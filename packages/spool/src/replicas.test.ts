/**
 * redis.ack: replicated with a primary that loses its replica (as after a failover):
 * `refuse` keeps answering 451, `local` acknowledges with the primary alone while the replica
 * is away, says so, and waits for the replica again once it is back. Real primary and replica.
 */
import { type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { RedisClient } from './connection.js';
import { connect, whenReady } from './connection.js';
import { SpoolUnavailableError } from './errors.js';
import { ReplicaWatch } from './replicas.js';
import { Spool } from './spool.js';

let primary: RedisServer;
let replica: RedisServer;
let redis: RedisClient;

async function synced(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!/slave0:.*state=online/.test(await redis.info('replication'))) {
    if (Date.now() > deadline) throw new Error('the replica never came online');
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  primary = await startRedis({ appendfsync: 'always' });
  replica = await startRedis({ extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)] });
  redis = connect({ url: primary.url, commandTimeout: 3000 }, 'producer');
  await whenReady(redis);
  await synced();
});
afterAll(async () => {
  redis?.disconnect();
  await replica?.stop();
  await primary?.stop();
});

const client = { ip: '192.0.2.1', helo: 'mx.example.net', user: null, tls: false };
const message = (i: number) => ({
  sender: `a${i}@example.net`,
  routes: [{ routeId: '[192.168.1.254]', recipients: [`b${i}@example.com`] }],
  body: Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`),
  client,
});

test('refuse and local, with the replica away and back', { timeout: 60_000 }, async () => {
  const events: string[] = [];
  const watch = new ReplicaWatch(
    redis,
    1,
    { missing: (n, w) => events.push(`missing ${n}/${w}`), back: (n) => events.push(`back ${n}`) },
    200,
  );
  await watch.start();
  let localAcks = 0;
  const options = { redis, ack: 'replicated' as const, replicas: 1, timeout: 1500 };
  const local = new Spool({ ...options, prefix: 'rl', replicaWatch: watch, onLocalAck: () => localAcks++ });
  const refuse = new Spool({ ...options, prefix: 'rr' });
  try {
    await local.enqueue(message(1));
    await refuse.enqueue(message(2));
    expect(localAcks).toBe(0);

    await replica.kill();
    await expect.poll(() => watch.missing, { timeout: 5000 }).toBe(true);
    expect(events).toEqual(['missing 0/1']);
    // refuse: 451 (the WAIT cannot succeed); local: accepted at once, and counted.
    await expect(refuse.enqueue(message(3))).rejects.toBeInstanceOf(SpoolUnavailableError);
    const started = performance.now();
    const meta = await local.enqueue(message(4));
    expect(performance.now() - started).toBeLessThan(1000);
    expect(localAcks).toBe(1);
    expect(await local.readBody(meta.id)).not.toBeNull();

    await replica.restart();
    await synced();
    await expect.poll(() => watch.missing, { timeout: 5000 }).toBe(false);
    expect(events).toEqual(['missing 0/1', 'back 1']);
    await local.enqueue(message(5));
    await refuse.enqueue(message(6));
    expect(localAcks).toBe(1);
  } finally {
    watch.stop();
    await local.close();
    await refuse.close();
  }
});
