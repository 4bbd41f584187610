import { type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { RedisClient } from './connection.js';
import { connect, whenReady } from './connection.js';
import { routeFigures } from './metrics-data.js';
import { actOnJob } from './queue-actions.js';
import { pauseRoute } from './routes.js';
import { Spool } from './spool.js';
import { workOnce } from './test-queue.js';

let server: RedisServer;
let redis: RedisClient;
let workerRedis: RedisClient;

beforeAll(async () => {
  server = await startRedis();
  redis = connect({ url: server.url }, 'producer');
  workerRedis = connect({ url: server.url }, 'worker');
  await whenReady(redis);
});
afterAll(async () => {
  redis.disconnect();
  workerRedis.disconnect();
  await server.stop();
});

test('per route: jobs by state (held apart from deferred), paused, and the oldest pending message', async () => {
  const spool = new Spool({ redis, prefix: 'm1', timeout: 2000, ack: 'local', replicas: 1 });
  const client = { ip: '127.0.0.1', helo: 'x', user: null, tls: false };
  const send = (routes: { routeId: string; recipients: string[] }[]) =>
    spool.enqueue({ sender: 's@example.org', routes, body: Buffer.from('x'), client });
  const first = await send([
    { routeId: 'a', recipients: ['1@a.example'] },
    { routeId: 'b', recipients: ['1@b.example'] },
  ]);
  await new Promise((r) => setTimeout(r, 20));
  const second = await send([{ routeId: 'a', recipients: ['2@a.example'] }]);
  await send([{ routeId: 'a', recipients: ['3@a.example'] }]);
  await workOnce(spool, workerRedis, 'b', 1, { defer: 60_000 });
  await actOnJob(spool, 'a', `${second.id}-1`, 'hold');
  // Route a's job of the first message is done: b still has it, a's oldest is now the second.
  await (await spool.queue('a').getJob(`${first.id}-1`))?.remove();
  await spool.release(first.id, `${first.id}-1`);
  await pauseRoute(spool, 'b');

  const figures = await routeFigures(spool, ['idle']);
  expect(figures).toEqual([
    {
      routeId: 'a',
      paused: false,
      counts: { waiting: 1, active: 0, deferred: 0, held: 1, failed: 0 },
      oldestQueuedAt: second.receivedAt,
    },
    {
      routeId: 'b',
      paused: true,
      counts: { waiting: 0, active: 0, deferred: 1, held: 0, failed: 0 },
      oldestQueuedAt: first.receivedAt,
    },
    {
      routeId: 'idle',
      paused: false,
      counts: { waiting: 0, active: 0, deferred: 0, held: 0, failed: 0 },
      oldestQueuedAt: null,
    },
  ]);
  await spool.close();
});
