/**
 * The floor under Moat's edge: the smallest smtp-server that makes each message durable in
 * Redis before it answers 250 (one SET of the body and one LPUSH of its id, in one MULTI). No
 * policy, no Received: header, no queue, no filters. The harness measures it as the system
 * `bare-always` beside `moat-edge-always`, to show how much of the edge's cost is smtp-server's
 * own and how much is Moat's.
 *   node bench/dist/bare-server.js --port N --redis redis://127.0.0.1:P [--bullmq]
 * With --bullmq (the system `bare-bullmq-always`) the id goes into a BullMQ job instead of a
 * list, with the options Moat's spool gives its jobs: the floor of any edge that queues its
 * work with BullMQ, as Moat does, and still does nothing else.
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { BULLMQ_EVENTS_MAX } from '@moat/spool';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { SMTPServer } from 'smtp-server';

// The same V8 collector setting as moat's (apps/moat/src/gc-flags.ts): any edge built on
// smtp-server can have it, so the floor has it too.
v8.setFlagsFromString('--external-memory-accounted-in-global-limit');

const { values } = parseArgs({
  options: { port: { type: 'string' }, redis: { type: 'string' }, bullmq: { type: 'boolean' } },
});
if (!values.port || !values.redis) throw new Error('usage: bare-server --port N --redis URL [--bullmq]');

const redis = new Redis(values.redis, { maxRetriesPerRequest: 1 });
// The queue options Moat's spool uses (packages/spool/src/spool.ts).
const queue = values.bullmq
  ? new Queue('bare', {
      connection: redis,
      skipWaitingForReady: true,
      streams: { events: { maxLen: BULLMQ_EVENTS_MAX } },
    })
  : null;
let sequence = 0;

/** Make one message durable: its body, and its id in a list (or a BullMQ job). */
function store(id: string, body: Buffer): Promise<unknown> {
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
      const id = `${process.pid}.${++sequence}`;
      store(id, Buffer.concat(chunks)).then(
        () => callback(null, `2.0.0 queued as ${id}`),
        (err: Error) => callback(Object.assign(err, { responseCode: 451 })),
      );
    });
  },
});
server.listen(Number(values.port), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => redis.quit().finally(() => process.exit(0))));
