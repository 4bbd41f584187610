import { type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { RedisClient } from './connection.js';
import { connect, whenReady } from './connection.js';
import { Spool } from './spool.js';
import type { DeliveryJob } from './types.js';
import { deferJob, startRouteWorker } from './workers.js';

let server: RedisServer;
let producer: RedisClient;
let consumer: RedisClient;

beforeAll(async () => {
  server = await startRedis();
  producer = connect({ url: server.url }, 'producer');
  consumer = connect({ url: server.url }, 'worker');
  await whenReady(producer);
});
afterAll(async () => {
  producer.disconnect();
  consumer.disconnect();
  await server.stop();
});

test('a worker takes a job, defers it with new data, and takes it again after the delay', async () => {
  const spool = new Spool({ redis: producer, prefix: 'w1', timeout: 2000, ack: 'local', replicas: 1 });
  const seen: DeliveryJob[] = [];
  const done = new Promise<void>((resolve) => {
    const worker = startRouteWorker(
      spool.keys,
      '[10.0.0.5]:2525',
      async (job, token) => {
        seen.push(job.data);
        if (job.data.attempts === 0) {
          await deferJob(job, token, 200, {
            ...job.data,
            attempts: 1,
            recipients: job.data.recipients.slice(1),
          });
        }
        await spool.release(job.data.messageId, job.id as string);
        resolve();
        void worker.close();
      },
      { connection: consumer, concurrency: 1 },
    );
  });
  const meta = await spool.enqueue({
    sender: 's@example.org',
    routes: [{ routeId: '[10.0.0.5]:2525', recipients: ['a@example.com', 'b@example.com'] }],
    body: Buffer.from('hello'),
    client: { ip: '127.0.0.1', helo: 'x', user: null, tls: false },
  });
  await done;
  expect(seen.map((d) => [d.attempts, d.recipients])).toEqual([
    [0, ['a@example.com', 'b@example.com']],
    [1, ['b@example.com']],
  ]);
  expect(await spool.readBody(meta.id)).toBeNull();
  await spool.close();
});
