import { type RedisServer, type Sentinel, startRedis, startSentinel } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { RedisClient } from './connection.js';
import { connect, whenReady } from './connection.js';
import { SpoolUnavailableError } from './errors.js';
import { Spool } from './spool.js';

// The design's promise: with redis.ack: replicated and a Sentinel-managed primary, losing the
// primary loses nothing acknowledged, and the spool carries on against the promoted replica.
let primary: RedisServer;
let replica: RedisServer;
let sentinel: Sentinel;
let redis: RedisClient;

beforeAll(async () => {
  primary = await startRedis({ appendfsync: 'always' });
  replica = await startRedis({
    appendfsync: 'always',
    extraArgs: ['--replicaof', '127.0.0.1', String(primary.port)],
  });
  sentinel = await startSentinel({ primaryPort: primary.port, downAfterMs: 1000 });
  redis = connect(
    { url: `redis-sentinel://127.0.0.1:${sentinel.port}/${sentinel.name}`, commandTimeout: 2000 },
    'producer',
  );
  await whenReady(redis, 10_000);
  // The replica must be in sync before the test relies on it.
  const deadline = Date.now() + 15_000;
  while (!/master_link_status:up/.test(await replicaInfo())) {
    if (Date.now() > deadline) throw new Error('the replica never synced');
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  redis?.disconnect();
  await sentinel?.stop();
  await replica?.stop();
  await primary?.stop();
});

async function replicaInfo(): Promise<string> {
  const direct = connect({ url: replica.url }, 'worker');
  try {
    return await direct.info('replication');
  } finally {
    direct.disconnect();
  }
}

const client = { ip: '192.0.2.1', helo: 'mx.example.net', user: null, tls: false };
const message = (i: number) => ({
  sender: `a${i}@example.net`,
  routes: [{ routeId: '[192.168.1.254]', recipients: [`b${i}@example.com`] }],
  body: Buffer.from(`Subject: ${i}\r\n\r\nbody ${i}\r\n`),
  client,
});

test('primary killed: acknowledged messages survive on the promoted replica, and queueing resumes', {
  timeout: 100_000,
}, async () => {
  const spool = new Spool({ redis, prefix: 'fo', timeout: 2000, ack: 'replicated', replicas: 1 });
  const acknowledged: string[] = [];
  for (let i = 0; i < 20; i++) acknowledged.push((await spool.enqueue(message(i))).id);

  await primary.kill();
  // Sentinel promotes the replica…
  const promoted = Date.now() + 30_000;
  while (!/role:master/.test(await replicaInfo())) {
    if (Date.now() > promoted) throw new Error('Sentinel did not promote the replica');
    await new Promise((r) => setTimeout(r, 200));
  }
  // …but with ack: replicated nothing is acknowledged until a replica confirms it again.
  await expect(spool.enqueue(message(99))).rejects.toBeInstanceOf(SpoolUnavailableError);
  // The old primary comes back; Sentinel makes it a replica of the new one (about 10 s here:
  // Sentinel waits 8 s after it reappears; a loaded machine has taken longer than 30 s).
  await primary.restart();
  let refused = 0;
  let resumed: string | null = null;
  const deadline = Date.now() + 60_000;
  while (resumed === null && Date.now() < deadline) {
    try {
      resumed = (await spool.enqueue(message(100))).id;
    } catch (err) {
      // Between the kill and the promotion: a temporary refusal (451 at the edge), never a 250.
      expect(err).toBeInstanceOf(SpoolUnavailableError);
      refused++;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  expect(resumed, 'queueing did not resume after the failover').not.toBeNull();
  expect(await replicaInfo()).toMatch(/role:master/);
  // Every acknowledged message is whole on the new primary: body and job. (Attempts refused
  // with 451 may have been written too; the client sends them again: at least once, never lost.)
  for (const id of acknowledged) {
    expect(await spool.readBody(id), id).not.toBeNull();
    expect(await spool.queue('[192.168.1.254]').getJob(`${id}-1`), id).toBeDefined();
  }
  expect(refused).toBeLessThan(300);
  await spool.close();
});
