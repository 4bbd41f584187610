/**
 * Moat on a 3-shard Redis Cluster (3 primaries, no replicas, appendfsync always, started on
 * loopback): one `moat edge` and one `moat worker` process with `redis.partitions`, driven by
 * smtp-source into Postfix's smtp-sink. Per shard: Redis commands (inside scripts counted) and
 * CPU per message, commands per second, and the spread from even; then the same per second
 * while idle (what the partitions' workers cost when there is no mail).
 *
 *   node bench/dist/cluster.js [--messages 6000] [--partitions 48] [--size 10] [--idle 10]
 */
import { parseArgs } from 'node:util';
import { freePort, startRedisCluster } from '@moat/testkit';
import { Redis } from 'ioredis';
import { startMoat } from './moat.js';
import { cpuSeconds } from './procs.js';
import { runSource, startSink } from './smtp-tools.js';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '6000' },
    partitions: { type: 'string', default: '48' },
    size: { type: 'string', default: '10' },
    idle: { type: 'string', default: '10' },
    /** Also run the same load on one redis-server (partitions 1), first, for comparison. */
    single: { type: 'boolean', default: false },
  },
});
const messages = Number(values.messages);
const partitions = Number(values.partitions);
const idleSeconds = Number(values.idle);

const calls = async (node: Redis) => {
  const text = await node.info('commandstats');
  return [...text.matchAll(/^cmdstat_\S+?:calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
};
const spread = (values: readonly number[]) => {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  return Math.max(...values.map((v) => Math.abs(v - mean) / mean)) * 100;
};

if (values.single) await singleRedis();

/** The same edge + worker and load on one redis-server (appendfsync always), partitions 1. */
async function singleRedis(): Promise<void> {
  const { startRedis } = await import('@moat/testkit');
  const redis = await startRedis({ appendfsync: 'always' });
  const sink = await startSink(await freePort());
  const port = await freePort();
  const moat = await startMoat({
    layout: 'split',
    port,
    redisUrl: redis.url,
    sinkPort: sink.port,
    prefix: 'bench',
  });
  const direct = new Redis({ host: redis.host, port: redis.port });
  try {
    const load = (n: number) =>
      runSource({
        port,
        messages: n,
        sessions: 20,
        size: Number(values.size) * 1024,
        perConnection: 1,
        to: 'user@example.com',
        timeoutMs: 600_000,
      });
    const warm = Math.min(2000, messages);
    if (!(await load(warm)).ok) throw new Error('warm-up failed');
    await sink.waitForCount(warm, 120_000);
    const before = await calls(direct);
    const cpuBefore = cpuSeconds(redis.pid);
    const started = performance.now();
    if (!(await load(messages)).ok) throw new Error('run failed');
    await sink.waitForCount(warm + messages, 300_000);
    const seconds = (performance.now() - started) / 1000;
    const used = (await calls(direct)) - before;
    const cpu = cpuSeconds(redis.pid) - cpuBefore;
    console.log(
      `one redis-server, partitions 1: ${(messages / seconds).toFixed(0)} msgs/s end to end, ` +
        `${(used / messages).toFixed(1)} commands/msg, ${((cpu * 1000) / messages).toFixed(3)} ms Redis CPU/msg`,
    );
  } finally {
    direct.disconnect();
    await moat.stop();
    await sink.stop();
    await redis.stop();
  }
}

const cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 0, appendfsync: 'always' });
const sink = await startSink(await freePort());
const port = await freePort();
const moat = await startMoat({
  layout: 'split',
  port,
  redisUrl: `redis-cluster://${cluster.seeds}`,
  sinkPort: sink.port,
  prefix: 'bench',
  redis: { partitions },
});
const primaries = await cluster.primaries();
const direct = primaries.map((p) => new Redis({ host: p.host, port: p.port }));
try {
  const load = (n: number) =>
    runSource({
      port,
      messages: n,
      sessions: 20,
      size: Number(values.size) * 1024,
      perConnection: 1,
      to: 'user@example.com',
      timeoutMs: 600_000,
    });
  const warm = Math.min(2000, messages);
  const warmed = await load(warm);
  if (!warmed.ok) throw new Error(warmed.output);
  await sink.waitForCount(warm, 120_000);

  const before = await Promise.all(direct.map(calls));
  const cpuBefore = primaries.map((p) => cpuSeconds(p.pid));
  const moatCpuBefore = moat.pids().map(cpuSeconds);
  const started = performance.now();
  const run = await load(messages);
  if (!run.ok) throw new Error(run.output);
  await sink.waitForCount(warm + messages, 300_000);
  const seconds = (performance.now() - started) / 1000;
  const used = (await Promise.all(direct.map(calls))).map((n, i) => n - (before[i] ?? 0));
  const cpu = primaries.map((p, i) => cpuSeconds(p.pid) - (cpuBefore[i] ?? 0));
  const moatCpu = moat.pids().map((pid, i) => cpuSeconds(pid) - (moatCpuBefore[i] ?? 0));

  console.log(
    `${messages} messages of ${values.size} KB, ${partitions} partitions, 3 shards: ` +
      `${(messages / seconds).toFixed(0)} msgs/s end to end; Moat edge + worker CPU ` +
      `${moatCpu.map((c) => ((c * 1000) / messages).toFixed(2)).join(' + ')} ms/msg`,
  );
  console.log('| shard | slots | Redis commands/msg | commands/s | Redis CPU ms/msg |');
  console.log('|---|---|---|---|---|');
  primaries.forEach((p, i) => {
    const slots = p.slots.map(([a, b]) => `${a}-${b}`).join(',');
    console.log(
      `| ${p.port} | ${slots} | ${((used[i] ?? 0) / messages).toFixed(1)} | ${((used[i] ?? 0) / seconds).toFixed(0)} | ${(((cpu[i] ?? 0) * 1000) / messages).toFixed(3)} |`,
    );
  });
  console.log(
    `all shards: ${(used.reduce((a, b) => a + b, 0) / messages).toFixed(1)} commands/msg, ` +
      `${((cpu.reduce((a, b) => a + b, 0) * 1000) / messages).toFixed(3)} ms Redis CPU/msg; ` +
      `spread from even: commands ±${spread(used).toFixed(1)} %, CPU ±${spread(cpu).toFixed(1)} %`,
  );

  // Idle: no mail; the workers' blocking waits and timers per partition, per shard.
  const idleBefore = await Promise.all(direct.map(calls));
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const idle = (await Promise.all(direct.map(calls))).map((n, i) => (n - (idleBefore[i] ?? 0)) / idleSeconds);
  console.log(
    `idle: ${idle.map((n) => n.toFixed(1)).join(' / ')} commands/s per shard (${partitions + 1} partitions × 2 routes, a BullMQ worker each)`,
  );
} finally {
  for (const d of direct) d.disconnect();
  await moat.stop();
  await sink.stop();
  await cluster.stop();
}
