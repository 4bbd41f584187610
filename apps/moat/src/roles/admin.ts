/**
 * The admin role: the admin API (packages/admin) on `admin.listen`, HTTPS when `admin.tls` is
 * set, with its own producer connection to Redis. Starts even while Redis is away (/ready says
 * so). The process's heartbeat is run-roles.ts's.
 */
import { readFileSync } from 'node:fs';
import { buildAdminApp } from '@moat/admin';
import { operatorBounce } from '@moat/delivery';
import { compileRelayPolicy } from '@moat/policy';
import { connect, spoolFromConfig, whenReady } from '@moat/spool';
import type { RoleContext, Service } from '../run-roles.js';

export async function startAdminRole(context: RoleContext): Promise<Service> {
  const { config, log } = context;
  const listen = config.admin.listen;
  if (listen === null) {
    log.info({ event: 'admin.disabled' }, 'admin.listen is null: no admin API');
    return { name: 'admin', stop: async () => {} };
  }
  if (config.admin.tokens.length === 0) {
    log.warn(
      { event: 'admin.no_tokens' },
      'admin.tokens is empty: only /health, /ready, /metrics and the dashboard page will answer',
    );
  }
  const https = config.admin.tls
    ? { key: readFileSync(config.admin.tls.key), cert: readFileSync(config.admin.tls.cert) }
    : null;
  const redis = connect(
    { url: context.redisUrl, commandTimeout: config.redis.timeout, name: `moat-admin:${context.nodeId}` },
    'producer',
  );
  await whenReady(redis, 5000).catch((err: unknown) =>
    log.warn({ event: 'admin.redis_unreachable', err: (err as Error).message }, 'Redis is not reachable yet'),
  );
  const spool = spoolFromConfig(config, redis, context.nodeId);
  const startedAt = Date.now();
  let app: Awaited<ReturnType<typeof buildAdminApp>>;
  try {
    app = await buildAdminApp({
      config,
      spool,
      nodeId: context.nodeId,
      version: context.version,
      log: log.child({ role: 'admin' }),
      https,
      startedAt,
      ready: context.readiness,
      warnings: context.warnings,
      bounce: operatorBounce(
        {
          spool,
          policy: compileRelayPolicy(config),
          hostname: config.hostname,
          enabled: config.delivery.bounces,
        },
        log.child({ role: 'admin' }),
      ),
    });
    await app.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    await spool.close();
    redis.disconnect();
    throw err;
  }
  log.info(
    {
      event: 'admin.listening',
      url: `${https ? 'https' : 'http'}://${formatHost(listen.host)}:${listen.port}`,
    },
    'admin API listening',
  );

  return {
    name: 'admin',
    async stop() {
      await app.close();
      await spool.close();
      redis.disconnect();
    },
  };
}

const formatHost = (host: string) => (host.includes(':') ? `[${host}]` : host);
