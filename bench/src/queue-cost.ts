/**
 * The Redis cost of one relayed message, apart from SMTP: Redis commands per message (those run
 * inside Lua scripts counted, from INFO commandstats) and Redis CPU per message, for
 * - `bullmq`: BullMQ alone, as Moat uses it (a job added with its own id, attempts 1, removed
 *   on completion; a worker that completes it): the floor any relay on BullMQ pays;
 * - `moat`: the spool's accept path (body, message script, job) and a worker doing what the
 *   delivery processor does with Redis once a message is delivered (read the body, write the
 *   "delivered" event, release the body), on a real redis-server with appendfsync always.
 *
 * and the Redis memory a queued (not yet delivered) message takes, body included.
 *
 *   node bench/dist/queue-cost.js [--messages 5000] [--concurrency 20] [--size 10] [--partitions 1]
 */
import { parseArgs } from 'node:util';
import { connect, Spool, startRouteWorker, whenReady } from '@moat/spool';
import { startRedis } from '@moat/testkit';
import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '20' },
    size: { type: 'string', default: '10' },
    partitions: { type: 'string', default: '1' },
  },
});
const messages = Number(values.messages);
const concurrency = Number(values.concurrency);
const body = Buffer.alloc(Number(values.size) * 1024, 'x');
const client = { ip: '192.0.2.1', helo: 'bench.example', user: null, tls: false };

interface Stats {
  readonly calls: Map<string, number>;
  readonly usec: number;
  readonly cpu: number;
}

async function stats(redis: Redis): Promise<Stats> {
  const [commands, cpu] = await Promise.all([redis.info('commandstats'), redis.info('cpu')]);
  const calls = new Map<string, number>();
  let usec = 0;
  for (const [, name, n, us] of commands.matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)) {
    calls.set(name ?? '', Number(n));
    usec += Number(us);
  }
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(cpu)?.[1] ?? 0);
  return { calls, usec, cpu: field('used_cpu_user') + field('used_cpu_sys') };
}

function report(label: string, before: Stats, after: Stats, n: number, seconds: number): void {
  const rows = [...after.calls]
    .map(([name, calls]) => [name, (calls - (before.calls.get(name) ?? 0)) / n] as const)
    .filter(([, perMessage]) => perMessage >= 0.005)
    .sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, c]) => sum + c, 0);
  const cpuMs = ((after.cpu - before.cpu) * 1000) / n;
  const usMs = (after.usec - before.usec) / 1000 / n;
  console.log(
    `${label}: ${total.toFixed(1)} Redis commands per message, Redis CPU ${cpuMs.toFixed(3)} ms/msg ` +
      `(inside commands ${usMs.toFixed(3)} ms), ${(n / seconds).toFixed(0)} msgs/s`,
  );
  for (const [name, c] of rows) console.log(`  ${name.padEnd(16)} ${c.toFixed(2)}`);
}

/** Runs `work(i)` for i < count, `concurrency` at a time. */
async function pool(count: number, work: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

const server = await startRedis({ appendfsync: 'always' });
const admin = connect({ url: server.url }, 'producer') as Redis;
const producer = connect({ url: server.url }, 'producer') as Redis;
const consumer = connect({ url: server.url }, 'worker') as Redis;
try {
  await Promise.all([whenReady(admin), whenReady(producer), whenReady(consumer)]);

  // BullMQ alone.
  {
    const queue = new Queue('route.bench', { connection: producer, prefix: '{floor}' });
    let done = 0;
    let finished!: () => void;
    const all = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const worker = new Worker(
      'route.bench',
      async () => {
        if (++done === messages) setImmediate(finished);
      },
      {
        connection: consumer,
        prefix: '{floor}',
        concurrency,
        removeOnComplete: { count: 0 },
        removeOnFail: { count: 10_000 },
        maxStalledCount: 1_000_000,
      },
    );
    await worker.waitUntilReady();
    await admin.call('CONFIG', 'RESETSTAT');
    const before = await stats(admin);
    const started = performance.now();
    await pool(messages, (i) =>
      queue.add(
        'deliver',
        { i },
        { jobId: `m${i}-1`, attempts: 1, removeOnComplete: true, removeOnFail: false },
      ),
    );
    await all;
    const seconds = (performance.now() - started) / 1000;
    report('bullmq (add + complete)', before, await stats(admin), messages, seconds);
    await worker.close();
    await queue.close();
  }

  // Moat's spool: accept, deliver, release.
  {
    const spool = new Spool({
      redis: producer,
      prefix: 'bench',
      partitions: Number(values.partitions),
      timeout: 10_000,
      ack: 'local',
      replicas: 1,
      node: 'bench',
    });
    let done = 0;
    let finished!: () => void;
    const all = new Promise<void>((resolve) => {
      finished = resolve;
    });
    const delivery = new Spool({
      redis: consumer,
      prefix: 'bench',
      partitions: Number(values.partitions),
      timeout: 10_000,
      ack: 'local',
      replicas: 1,
      node: 'bench-worker',
    });
    await spool.refreshLayout(true);
    const workers = spool.partitions().map((p) =>
      startRouteWorker(
        spool.partitionKeys(p),
        'bench',
        async (job) => {
          const data = job.data;
          await delivery.readBody(data.messageId);
          await Promise.all([
            delivery.track({
              type: 'delivered',
              messageId: data.messageId,
              routeId: data.routeId,
              recipients: data.recipients,
              host: '127.0.0.1',
              reply: '250 2.0.0 Ok',
            }),
            delivery.release(data.messageId, String(job.id)),
          ]);
          if (++done === messages) setImmediate(finished);
        },
        {
          connection: consumer,
          concurrency: Math.max(1, Math.ceil(concurrency / spool.partitions().length)),
        },
      ),
    );
    await Promise.all(workers.map((w) => w.waitUntilReady()));
    await admin.call('CONFIG', 'RESETSTAT');
    const before = await stats(admin);
    const started = performance.now();
    await pool(messages, (i) =>
      spool.enqueue({
        sender: `s${i}@example.org`,
        routes: [{ routeId: 'bench', recipients: [`r${i}@example.com`] }],
        body,
        client,
      }),
    );
    await all;
    const seconds = (performance.now() - started) / 1000;
    report(`moat spool (partitions ${values.partitions})`, before, await stats(admin), messages, seconds);
    await Promise.all(workers.map((w) => w.close()));
    await Promise.all([spool.close(), delivery.close()]);
  }

  // Memory of queued mail: messages accepted while their route is paused (the internal server
  // down for maintenance), used_memory before and after.
  {
    const spool = new Spool({
      redis: producer,
      prefix: 'backlog',
      partitions: Number(values.partitions),
      timeout: 10_000,
      ack: 'local',
      replicas: 1,
    });
    const used = async () => Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1] ?? 0);
    await spool.enqueue({
      sender: 'a@example.org',
      routes: [{ routeId: 'held', recipients: ['b@example.com'] }],
      body,
      client,
    });
    const before = await used();
    await pool(messages, (i) =>
      spool.enqueue({
        sender: `s${i}@example.org`,
        routes: [{ routeId: 'held', recipients: [`r${i}@example.com`] }],
        body,
        client,
      }),
    );
    const perMessage = ((await used()) - before) / messages;
    console.log(
      `queued: ${(perMessage / 1024).toFixed(2)} KiB of Redis memory per message of ${values.size} KiB ` +
        `(${((perMessage - body.length) / 1024).toFixed(2)} KiB besides the body)`,
    );
    await spool.close();
  }
} finally {
  admin.disconnect();
  producer.disconnect();
  consumer.disconnect();
  await server.stop();
}
