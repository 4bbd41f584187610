/**
 * The floor under Moat's edge: the smallest smtp-server that makes each message durable in
 * Redis before it answers 250 (one SET of the body and one LPUSH of its id, in one MULTI). No
 * policy, no Received: header, no queue, no filters. The harness measures it as the system
 * `bare-always` beside `moat-edge-always`, to show how much of the edge's cost is smtp-server's
 * own and how much is Moat's.
 *   node bench/dist/bare-server.js --port N --redis redis://127.0.0.1:P
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { Redis } from 'ioredis';
import { SMTPServer } from 'smtp-server';

// The same V8 collector setting as moat's (apps/moat/src/gc-flags.ts): any edge built on
// smtp-server can have it, so the floor has it too.
v8.setFlagsFromString('--external-memory-accounted-in-global-limit');

const { values } = parseArgs({ options: { port: { type: 'string' }, redis: { type: 'string' } } });
if (!values.port || !values.redis) throw new Error('usage: bare-server --port N --redis URL');

const redis = new Redis(values.redis, { maxRetriesPerRequest: 1 });
let sequence = 0;

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
      redis
        .multi()
        .set(`bare:body:${id}`, Buffer.concat(chunks))
        .lpush('bare:queue', id)
        .exec()
        .then(
          () => callback(null, `2.0.0 queued as ${id}`),
          (err: Error) => callback(Object.assign(err, { responseCode: 451 })),
        );
    });
  },
});
server.listen(Number(values.port), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => redis.quit().finally(() => process.exit(0))));
