/**
 * The entry of the delivery thread: in a process that also runs the edge, the workers run
 * here, on a core of their own (see roles/worker.ts). It speaks to the main thread in four
 * messages: ready (or failed), stats every couple of seconds, and stop → stopped; and it takes
 * the bodies the edge has just queued (body), for its cache (delivery.bodyCache).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { bodyCacheFor, startDelivery } from '@moat/delivery';
import type { MoatConfig } from '@moat/policy';
import { Counters, connect, keysFor } from '@moat/spool';
import pino from 'pino';

export interface ThreadInput {
  readonly config: MoatConfig;
  readonly redisUrl: string;
  readonly nodeId: string;
}

export type ThreadMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'failed'; readonly error: string }
  | { readonly type: 'stats'; readonly stats: Record<string, number> }
  | { readonly type: 'log'; readonly line: string }
  | { readonly type: 'stopped' };

/** From the main thread: a body the edge has made durable, in memory of its own. */
export interface BodyMessage {
  readonly type: 'body';
  readonly id: string;
  readonly body: Uint8Array;
}

const STATS_EVERY_MS = 2000;

async function run(port: NonNullable<typeof parentPort>, input: ThreadInput): Promise<void> {
  const { config, redisUrl, nodeId } = input;
  const send = (message: ThreadMessage) => port.postMessage(message);
  // Lines go to the main thread, which writes them with its own: one writer on stdout.
  const log = pino(
    { level: config.log.level, base: { node: config.hostname, pid: process.pid, thread: 'delivery' } },
    { write: (line: string) => send({ type: 'log', line }) },
  );
  // The thread's share of the cluster-wide metrics: increments add up in Redis with the rest.
  const redis = connect({ url: redisUrl, name: `moat-worker-metrics:${nodeId}` }, 'worker');
  const counters = new Counters(redis, keysFor(config.redis.prefix, config.redis.partitions));
  counters.start();
  const bodies = bodyCacheFor(config.delivery.bodyCache);
  let delivery: Awaited<ReturnType<typeof startDelivery>>;
  try {
    delivery = await startDelivery({
      config,
      redisUrl,
      log: log.child({ role: 'worker' }),
      nodeId,
      counters,
      bodies: bodies ?? undefined,
    });
  } catch (err) {
    await counters.stop();
    redis.disconnect();
    send({ type: 'failed', error: (err as Error).message });
    port.close();
    return;
  }
  const stats = () =>
    send({
      type: 'stats',
      stats: delivery.stats(),
    });
  const timer = setInterval(stats, STATS_EVERY_MS);
  send({ type: 'ready' });
  stats();
  let stopping = false;
  port.on('message', async (message: { type: string }) => {
    if (message.type === 'body') {
      const { id, body } = message as BodyMessage;
      bodies?.put(id, Buffer.from(body.buffer, body.byteOffset, body.byteLength));
      return;
    }
    if (message.type !== 'stop' || stopping) return;
    stopping = true;
    clearInterval(timer);
    try {
      await delivery.stop();
    } catch (err) {
      log.error({ event: 'delivery.stop_failed', err }, 'delivery did not stop cleanly');
    } finally {
      await counters.stop();
      redis.disconnect();
      send({ type: 'stopped' });
      port.close();
    }
  });
}

if (parentPort) void run(parentPort, workerData as ThreadInput);
