/**
 * For this package's tests: a real redis-server for one test file and a producer connection
 * to it, started before the file's tests and stopped after them.
 */
import { type RedisServer, startRedis } from '@moat/testkit';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { connect, whenReady } from './connection.js';

export interface TestRedis {
  readonly server: RedisServer;
  readonly redis: Redis;
}

export function useRedis(): TestRedis {
  const context = {} as { server: RedisServer; redis: Redis };
  beforeAll(async () => {
    context.server = await startRedis();
    context.redis = connect({ url: context.server.url }, 'producer') as Redis;
    await whenReady(context.redis);
  });
  afterAll(async () => {
    context.redis?.disconnect();
    await context.server?.stop();
  });
  return context;
}
