/**
 * Test fixture (not built): a real edge on a free port in front of a real redis-server, a
 * message and its queue id. Tests talk to the edge with @moat/testkit's RawSmtp.
 */
import { configSchema, type MoatConfigInput } from '@moat/policy';
import type { RedisClient } from '@moat/spool';
import { connect, Spool, whenReady } from '@moat/spool';
import { type RedisServer, startRedis } from '@moat/testkit';
import pino from 'pino';
import { type Edge, type EdgeOptions, startEdge } from './edge.js';

export interface TestEdge {
  readonly edge: Edge;
  readonly spool: Spool;
  readonly redis: RedisClient;
  readonly port: number;
  close(): Promise<void>;
}

let prefixes = 0;

export const BASE_CONFIG: MoatConfigInput = {
  hostname: 'relay.example.com',
  smtp: { listen: ['127.0.0.1:2525'] },
  inbound: { domains: { 'example.com': '[192.168.1.254]', 'example.org': '[192.168.1.254]:2525' } },
  outbound: { clients: ['10.99.0.0/16'] },
};

export async function startTestEdge(
  server: RedisServer,
  overrides: Partial<MoatConfigInput> = {},
  extra: Partial<EdgeOptions> = {},
): Promise<TestEdge> {
  const config = configSchema.parse({
    ...BASE_CONFIG,
    ...overrides,
    redis: { url: server.url, timeout: '1s' },
  });
  const redis = connect({ url: server.url, commandTimeout: 1000 }, 'producer');
  await whenReady(redis);
  const spool = new Spool({
    redis,
    prefix: `e${++prefixes}`,
    timeout: config.redis.timeout,
    ack: 'local',
    replicas: 1,
  });
  const log = pino({ level: process.env.MOAT_TEST_LOG ?? 'silent' });
  const edge = await startEdge({ config, spool, log, listen: [{ host: '127.0.0.1', port: 0 }], ...extra });
  return {
    edge,
    spool,
    redis,
    port: edge.addresses[0]?.port ?? 0,
    async close() {
      await edge.close(1000);
      await spool.close();
      redis.disconnect();
    },
  };
}

export { startRedis };

export const MESSAGE = 'From: a@example.net\r\nTo: b@example.com\r\nSubject: test\r\n\r\nHello.\r\n';

/** Read back the queue id from a 250 reply. */
export function queueIdOf(reply: string): string {
  const m = /queued as (\S+)/.exec(reply);
  if (!m?.[1]) throw new Error(`no queue id in: ${reply}`);
  return m[1];
}
