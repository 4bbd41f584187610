/** Test fixture: a real Redis, a spool with a fresh prefix, real queued mail, and the admin app. */
import { type MoatConfig, parseConfig } from '@moat/policy';
import { connect, Spool, whenReady } from '@moat/spool';
import { workOnce } from '@moat/spool/test-queue';
import { type RedisServer, startRedis } from '@moat/testkit';
import type { FastifyInstance } from 'fastify';
import { type AdminAppOptions, buildAdminApp } from './app.js';

export const ADMIN_TOKEN = 'admin-token-0123456789abcdef';
export const READ_TOKEN = 'read-token-0123456789abcdef';
export const INBOUND = '[192.168.1.254]';
export const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}` };
export const READ = { authorization: `Bearer ${READ_TOKEN}` };

export function testConfig(extra: Record<string, unknown> = {}): MoatConfig {
  const r = parseConfig({
    hostname: 'relay.example.com',
    redis: 'redis://127.0.0.1:1/0',
    inbound: { domains: { 'example.com': INBOUND, '*.example.net': '[10.0.0.5]:2525' } },
    outbound: { clients: ['198.51.100.0/24'] },
    admin: {
      listen: '127.0.0.1:8025',
      tokens: [
        { name: 'ops', token: ADMIN_TOKEN, scope: 'admin' },
        { name: 'grafana', token: READ_TOKEN, scope: 'read' },
      ],
    },
    ...extra,
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config;
}

export interface Fixture {
  readonly server: RedisServer;
  readonly redis: ReturnType<typeof connect>;
  readonly workerRedis: ReturnType<typeof connect>;
  /** A fresh spool (own key prefix, `partitions` of them) and an app over it. */
  app(
    options?: Partial<AdminAppOptions>,
    partitions?: number,
  ): Promise<{ app: FastifyInstance; spool: Spool }>;
  close(): Promise<void>;
}

let prefixes = 0;

export async function startFixture(): Promise<Fixture> {
  const server = await startRedis();
  const redis = connect({ url: server.url, commandTimeout: 2000 }, 'producer');
  const workerRedis = connect({ url: server.url }, 'worker');
  await whenReady(redis);
  const open: { app: FastifyInstance; spool: Spool }[] = [];
  return {
    server,
    redis,
    workerRedis,
    async app(options = {}, partitions = 1) {
      const spool = new Spool({
        redis,
        prefix: `a${process.pid}x${++prefixes}`,
        partitions,
        timeout: 2000,
        ack: 'local',
        replicas: 1,
      });
      const app = await buildAdminApp({
        config: testConfig(),
        spool,
        nodeId: 'test:1',
        version: '9.9.9',
        ...options,
      });
      open.push({ app, spool });
      return { app, spool };
    },
    async close() {
      for (const o of open) {
        await o.app.close();
        await o.spool.close();
      }
      redis.disconnect();
      workerRedis.disconnect();
      await server.stop();
    },
  };
}

const client = { ip: '192.0.2.10', helo: 'mx.example.org', user: null, tls: false };

/** Queue a message as the edge does (body with a Received: header, one job per route). */
export function queueMail(spool: Spool, sender: string, routes: Record<string, string[]>, subject = 'Hello') {
  return spool.enqueue({
    sender,
    routes: Object.entries(routes).map(([routeId, recipients]) => ({ routeId, recipients })),
    body: Buffer.from(
      `Received: from mx.example.org (mx.example.org [192.0.2.10])\r\n\tby relay.example.com\r\nSubject: ${subject}\r\nFrom: <${sender}>\r\n\r\nHi.\r\n`,
    ),
    client,
  });
}

/** Let a real worker take `count` jobs of a route and defer each with a remote reply. */
export function deferJobs(
  spool: Spool,
  connection: ReturnType<typeof connect>,
  routeId: string,
  count: number,
  reply = { code: 451, text: '4.7.1 Greylisted, try again later', host: '192.168.1.254' },
  delayMs = 600_000,
): Promise<void> {
  return workOnce(spool, connection, routeId, count, { defer: delayMs, reply, track: true });
}
