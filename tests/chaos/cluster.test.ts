/**
 * Chaos scenario 4: a Redis Cluster of 3 primaries and 3 replicas (appendfsync always), two
 * `moat edge` and two `moat worker` processes with redis.partitions 16 (redis-cluster://), the
 * edges acknowledging once a replica of the message's shard has it (ack: replicated; local
 * while a shard has lost its replica). Under load: the mail spreads over all three primaries;
 * a primary is SIGKILLed (its replica takes over) and comes back as a replica; then slots are
 * migrated from one primary to another (redis-cli --cluster reshard). Nothing acknowledged may
 * be lost.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, whenReady } from '@moat/spool';
import {
  type DnsServer,
  type RedisCluster,
  type SmtpSink,
  startDns,
  startRedisCluster,
  startSmtpSink,
} from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Fleet } from './fleet.js';
import { assertNothingLost, formatTally, receivedIds, startLoad } from './ledger.js';
import { until } from './wait.js';

let dir: string;
let cluster: RedisCluster;
let dns: DnsServer;
let sink: SmtpSink;
let fleet: Fleet;

/**
 * Message bodies stored on each primary now (SCAN sees a node's own keys only). `committed`:
 * only those of committed messages (no expiry). A body whose message script failed (the client
 * got 451, e.g. during the failover) keeps the expiry it was written with and goes by itself.
 */
async function bodiesPerPrimary(which: 'all' | 'committed' = 'all'): Promise<number[]> {
  const primaries = await cluster.primaries();
  return Promise.all(
    primaries.map(async (p) => {
      const node = connect({ url: `redis://${p.host}:${p.port}` }, 'producer');
      try {
        await whenReady(node, 3000);
        let count = 0;
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', '{chaos:p*}:m:*:body', 'COUNT', 1000);
          cursor = next;
          if (which === 'all') count += keys.length;
          else for (const key of keys) if ((await node.pttl(key)) === -1) count++;
        } while (cursor !== '0');
        return count;
      } finally {
        node.disconnect();
      }
    }),
  );
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-chaos-cluster-'));
  [cluster, dns, sink] = await Promise.all([
    startRedisCluster({ primaries: 3, replicasPerPrimary: 1, appendfsync: 'always' }),
    startDns(),
    // A smart host slow enough that mail waits in Redis while it is looked at.
    startSmtpSink({ tls: false, onData: () => new Promise((r) => setTimeout(() => r(undefined), 30)) }),
  ]);
  fleet = await Fleet.start({
    dir,
    edges: 2,
    workers: 2,
    redis: {
      url: `redis-cluster://${cluster.seeds}`,
      partitions: 16,
      ack: 'replicated',
      replicas: 1,
      whenReplicasMissing: 'local',
      timeout: '3s',
    },
    sinkPort: sink.port,
    dns: dns.server,
    delivery: { concurrency: 8, maxConnectionsPerHost: 8 },
  });
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
  await sink?.close();
  await dns?.close();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('16 partitions on 3 shards: a primary killed and slots migrated under load, nothing acknowledged lost', async () => {
  const load = startLoad({
    name: 'cluster',
    ports: () => fleet.edgePorts(),
    clients: 6,
    maxMessages: 1500,
    durationMs: 60_000,
    pauseMs: 10,
    retry: { attempts: 40, delayMs: 500 },
  });
  const { ledger } = load;
  const acknowledgedAfter = async (n: number, what: string) => {
    const target = ledger.acknowledged + n;
    await until(what, () => ledger.acknowledged >= target, 30_000);
  };
  const marks: string[] = [];
  const mark = (what: string) => marks.push(`${what} at ${ledger.acknowledged} acknowledged`);
  let spread: number[] = [];
  let outageMs = Number.NaN;
  try {
    // Mail waits in every shard: each primary holds bodies.
    await acknowledgedAfter(100, 'acknowledgements before looking at the shards');
    await until(
      'bodies on all three primaries',
      async () => {
        spread = await bodiesPerPrimary();
        return spread.length === 3 && spread.every((n) => n > 0);
      },
      15_000,
      200,
    );
    mark(`bodies per primary ${spread.join('/')}`);

    const [victim] = await cluster.primaries();
    if (!victim) throw new Error('no primary');
    const killedAt = Date.now();
    await cluster.kill(victim);
    mark(`primary ${victim.port} SIGKILLed`);
    await cluster.waitForFailover(30_000);
    outageMs = Date.now() - killedAt;
    mark(`failover done after ${outageMs} ms`);
    await acknowledgedAfter(60, 'acknowledgements after the failover');
    await cluster.restart(victim);
    mark(`${victim.port} back as a replica`);
    await acknowledgedAfter(60, 'acknowledgements after the old primary came back');

    const [from, to] = await cluster.primaries();
    if (!from || !to) throw new Error('fewer than two primaries');
    await cluster.reshard({ from, to, slots: 2000 });
    mark(`2000 slots migrated from ${from.port} to ${to.port}`);
    await acknowledgedAfter(60, 'acknowledgements after the migration');
  } finally {
    load.stop();
    await load.done;
  }
  const tally = await ledger.drain(() => receivedIds([sink]), 60_000);
  console.log(formatTally('chaos 4 (Redis Cluster: primary SIGKILL, slot migration)', tally));
  console.log(`chaos 4: ${marks.join('; ')}; replies: ${ledger.replies()}`);
  assertNothingLost('chaos 4', tally);
  expect(tally.acknowledged).toBeGreaterThanOrEqual(280);
  // Everything delivered is released: no committed message's body is left on any primary
  // (the uncommitted ones of refused attempts expire by themselves).
  await until(
    'the bodies to be released',
    async () => (await bodiesPerPrimary('committed')).every((n) => n === 0),
    30_000,
  );
  console.log(`chaos 4: uncommitted bodies left to expire: ${(await bodiesPerPrimary()).join('/')}`);
}, 240_000);
