/**
 * The floor under Moat's edge: the smallest smtp-server that makes each message durable in
 * Redis before it answers 250 (one SET of the body and one LPUSH of its id, in one MULTI). No
 * policy, no Received: header, no queue, no filters. The harness measures it as the system
 * `bare-always` beside `moat-edge-always`, to show how much of the edge's cost is smtp-server's
 * own and how much is Moat's.
 *   node bench/dist/bare-server.js --port N --redis redis://127.0.0.1:P [--bullmq | --spool]
 * With --bullmq (the system `bare-bullmq-always`) the id goes into a BullMQ job instead of a
 * list, with the options Moat's spool gives its jobs: the floor of any edge that queues its
 * work with BullMQ, as Moat does, and still does nothing else.
 * With --spool (the system `bare-spool-always`) each message goes through Moat's own
 * Spool.enqueue on Moat's connection (body, metadata, tracking event, job): the floor of an
 * edge that stores messages as Moat does, without its policy, headers, checks or logs.
 * With --relay PORT (the system `bare-relay-always`) the bare floor also delivers what it
 * stored to 127.0.0.1:PORT, from a worker thread (bare-relay.ts): the end-to-end floor under
 * `moat start`.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { Worker } from 'node:worker_threads';
import { BULLMQ_EVENTS_MAX, connect, Spool } from '@moat/spool';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { SMTPServer } from 'smtp-server';
import type { RelayBody, RelayData } from './bare-relay.js';

// The same V8 collector setting as moat's (apps/moat/src/gc-flags.ts): any edge built on
// smtp-server can have it, so the floor has it too.
v8.setFlagsFromString('--external-memory-accounted-in-global-limit');

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    redis: { type: 'string' },
    bullmq: { type: 'boolean' },
    spool: { type: 'boolean' },
    relay: { type: 'string' },
  },
});
if (!values.port || !values.redis)
  throw new Error('usage: bare-server --port N --redis URL [--bullmq | --spool | --relay PORT]');

const redis = new Redis(values.redis, { maxRetriesPerRequest: 1 });
// The queue options Moat's spool uses (packages/spool/src/spool.ts).
const queue = values.bullmq
  ? new Queue('bare', {
      connection: redis,
      skipWaitingForReady: true,
      streams: { events: { maxLen: BULLMQ_EVENTS_MAX } },
    })
  : null;
// Moat's spool with the edge's defaults (redis.timeout 5 s, ack local, one partition).
const spool = values.spool
  ? new Spool({
      redis: connect({ url: values.redis }, 'producer'),
      prefix: 'bare',
      timeout: 5000,
      ack: 'local',
      replicas: 0,
    })
  : null;
/** The relay floor's delivery thread (--relay), which also takes each stored body in memory. */
const relay = values.relay
  ? new Worker(join(import.meta.dirname, 'bare-relay.js'), {
      // Moat's default delivery.concurrency.
      workerData: { redis: values.redis, port: Number(values.relay), concurrency: 20 } satisfies RelayData,
    }).on('error', (err) => {
      process.stderr.write(`bare-relay: ${err.stack ?? err.message}\n`);
      process.exit(1);
    })
  : null;

/** Hand a stored body to the relay thread: moved when it has its memory to itself (Buffer.concat above the pool's size), else copied. */
function handOver(id: string, body: Buffer): void {
  if (relay === null) return;
  const own =
    body.length >= Buffer.poolSize && body.byteOffset === 0 && body.buffer.byteLength === body.length;
  const message: RelayBody = { id, body: own ? new Uint8Array(body.buffer) : new Uint8Array(body) };
  relay.postMessage(message, [message.body.buffer as ArrayBuffer]);
}
const CLIENT = { ip: '127.0.0.1', helo: 'bench', user: null, tls: false };
let sequence = 0;

/** Make one message durable: its body, and its id in a list (or a BullMQ job). */
function store(id: string, body: Buffer): Promise<unknown> {
  if (spool !== null) {
    const routes = [{ routeId: 'bare', recipients: ['a@example.com'] }];
    return spool.enqueue({ id, sender: 'bench@example.net', routes, body, client: CLIENT, crlf: true });
  }
  if (queue === null) return redis.multi().set(`bare:body:${id}`, body).lpush('bare:queue', id).exec();
  return Promise.all([
    redis.set(`bare:body:${id}`, body),
    queue.add(
      'deliver',
      { messageId: id, sender: 'bench@example.net', recipients: ['a@example.com'], queuedAt: Date.now() },
      { jobId: id, attempts: 1, removeOnComplete: true, removeOnFail: false },
    ),
  ]);
}

const server = new SMTPServer({
  disableReverseLookup: true,
  greetingDelay: 0,
  disabledCommands: ['AUTH'],
  logger: false,
  onData(stream, _session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => {
      const id = spool ? spool.newMessageId() : `${process.pid}.${++sequence}`;
      const body = Buffer.concat(chunks);
      store(id, body).then(
        () => {
          callback(null, `2.0.0 queued as ${id}`);
          handOver(id, body);
        },
        (err: Error) => callback(Object.assign(err, { responseCode: 451 })),
      );
    });
  },
});
server.listen(Number(values.port), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => redis.quit().finally(() => process.exit(0))));
