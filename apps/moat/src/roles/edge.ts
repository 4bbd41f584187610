/**
 * The edge role: the SMTP listener with its producer connection to Redis, back-pressure
 * guard, the orphan sweeper, and the content filters with the monitor of their daemons.
 */
import { Resolver } from 'node:dns';
import { startEdge } from '@moat/edge';
import {
  buildFilters,
  DnsblChecker,
  FilterMonitor,
  hasSessionChecks,
  lookupThrough,
  RecipientValidator,
  sessionChecker,
} from '@moat/filters';
import { compileRelayPolicy, findInbound, type MoatConfig } from '@moat/policy';
import type { Keys, RedisClient } from '@moat/spool';
import {
  assertNoEviction,
  connect,
  Greylist,
  MemoryGuard,
  RateLimits,
  RecipientCache,
  ReplicaWatch,
  spoolFromConfig,
  sweepOrphans,
  whenReady,
} from '@moat/spool';
import type { Logger } from 'pino';
import type { RoleContext, Service } from '../run-roles.js';

const SWEEP_EVERY_MS = 60_000;
const ORPHAN_GRACE_MS = 10 * 60_000;

export async function startEdgeRole(context: RoleContext): Promise<Service> {
  const { config, log } = context;
  const redis = connect(
    { url: context.redisUrl, commandTimeout: config.redis.timeout, name: `moat-edge:${context.nodeId}` },
    'producer',
  );
  try {
    await whenReady(redis, 5000);
    await assertNoEviction(redis);
  } catch (err) {
    if ((err as Error).message.includes('maxmemory-policy')) {
      redis.disconnect();
      throw err;
    }
    // Redis is away: start anyway and answer 451 until it returns; check its policy then.
    log.warn(
      { event: 'edge.redis_unreachable', err: (err as Error).message },
      'Redis is not reachable; mail gets 451 until it is',
    );
    redis.once('ready', () => {
      assertNoEviction(redis).catch((policyErr: unknown) => {
        log.fatal({ event: 'edge.redis_policy', err: (policyErr as Error).message }, 'refusing to take mail');
        process.kill(process.pid, 'SIGTERM');
      });
    });
  }
  const replicas = replicaWatch(context, redis);
  await replicas?.start();
  const spool = spoolFromConfig(config, redis, context.nodeId, {
    replicaWatch: replicas ?? undefined,
    onLocalAck: () => context.counters.inc('localAcks'),
  });
  const memory = new MemoryGuard(redis, config.redis.maxMemoryUsage);
  memory.start();
  const edgeLog = log.child({ role: 'edge' });
  let current = await protection(context, config, redis, spool.keys, edgeLog);
  const edge = await startEdge({
    config,
    spool,
    onQueued: context.bodies.queued,
    log: edgeLog,
    memory,
    counters: context.counters,
    filters: current.filters,
    signer: current.signer,
    checker: current.checker,
    ...reverseResolver(context),
  });
  const sweeper = setInterval(() => void sweep(), SWEEP_EVERY_MS);
  const sweep = async () => {
    try {
      for (const partition of await spool.refreshLayout(true)) {
        const r = await sweepOrphans(redis, spool.partitionKeys(partition), ORPHAN_GRACE_MS);
        if (r.deleted.length > 0)
          log.warn(
            { event: 'spool.orphans_deleted', partition, ids: r.deleted },
            'deleted orphaned messages',
          );
      }
    } catch {
      // Redis is away: the next round sweeps.
    }
  };
  sweeper.unref();
  return {
    name: 'edge',
    stats: () => ({
      sessions: edge.sessions(),
      ...current.monitor.stats(),
      ...(replicas ? { replicasMissing: replicas.missing ? 1 : 0 } : {}),
    }),
    ready: () => current.monitor.readiness(),
    warnings: () =>
      replicas?.missing
        ? [
            `redis: ${replicas.connected ?? 0} of ${config.redis.replicas} replicas online; acknowledging with the primary's durability alone (redis.whenReplicasMissing: local)`,
          ]
        : [],
    async reload(next) {
      // Filters, checks and their clients built anew from the new config; sessions already open
      // keep the old ones, whose connections close once those sessions can have ended.
      const previous = current;
      current = await protection(context, next, redis, spool.keys, edgeLog);
      edge.reconfigure({
        config: next,
        filters: current.filters,
        signer: current.signer,
        checker: current.checker,
      });
      previous.monitor.stop();
      setTimeout(() => void previous.close(), Math.min(next.smtp.idleTimeout, 10 * 60_000)).unref();
    },
    async stop() {
      clearInterval(sweeper);
      replicas?.stop();
      await edge.close(Math.min(config.smtp.dataTimeout, 30_000));
      await current.close();
      memory.stop();
      await spool.close();
      redis.disconnect();
    },
  };
}

/** Reverse lookups only through Moat's configured resolvers, and only when enabled. */
function reverseResolver(context: RoleContext) {
  const { smtp, dns } = context.config;
  if (!smtp.reverseDns) return {};
  const resolver = new Resolver({ timeout: dns.timeout, tries: 2 });
  if (dns.servers.length > 0) resolver.setServers([...dns.servers]);
  return {
    resolver: {
      reverse: (ip: string, cb: (err: Error | null, names?: string[]) => void) => resolver.reverse(ip, cb),
    },
  };
}

/** Content filters, DKIM signing, the monitor of the filters' daemons, and the session checks. */
async function protection(
  context: RoleContext,
  config: Readonly<MoatConfig>,
  redis: RedisClient,
  keys: Keys,
  log: Logger,
) {
  const built = buildFilters(config.filters, {
    hostname: config.hostname,
    lookup: lookupThrough(config.dns.servers, config.dns.timeout),
  });
  const monitor = new FilterMonitor(
    built.probes,
    {
      down: (filter, error) =>
        log.error({ event: 'filter.daemon_down', filter, err: error }, `${filter} does not answer`),
      up: (filter) => log.info({ event: 'filter.daemon_up', filter }, `${filter} answers again`),
    },
    { intervalMs: config.filters.probeInterval },
  );
  await monitor.start();
  if (built.filters.length > 0 || built.signer)
    log.info(
      { event: 'edge.filters', filters: built.filters.map((f) => f.name), dkim: built.signer !== null },
      'content filters on',
    );
  const { checker, recipients } = sessionChecks(context, config, redis, keys);
  return {
    filters: built.filters,
    signer: built.signer,
    checker,
    monitor,
    async close() {
      monitor.stop();
      await recipients?.close();
    },
  };
}

/** DNS lists, rate limits, recipient validation and greylisting, when any is configured. */
function sessionChecks(context: RoleContext, config: Readonly<MoatConfig>, redis: RedisClient, keys: Keys) {
  const { log, counters } = context;
  if (!hasSessionChecks(config)) return { checker: null, recipients: null };
  const policy = compileRelayPolicy(config);
  const recipients =
    Object.keys(config.recipients.domains).length > 0
      ? new RecipientValidator(config.recipients, {
          hostname: config.hostname,
          cache: new RecipientCache(redis, keys),
          smartHost: (domain) => findInbound(policy, domain)?.route.hops[0] ?? null,
          onReload: (event) =>
            'error' in event
              ? log.error(
                  { event: 'recipients.reload_failed', ...event },
                  'a recipient list could not be reloaded',
                )
              : log.info({ event: 'recipients.reloaded', ...event }, 'recipient list reloaded'),
        })
      : null;
  const checker = sessionChecker({
    config,
    dnsbl: config.dnsbl.sites.length > 0 ? new DnsblChecker(config.dnsbl, config.dns.servers) : null,
    limits: new RateLimits(redis, keys),
    greylist: new Greylist(redis, keys),
    recipients,
    onDnsbl: (client, result) => {
      const outcome = result.listed ? 'listed' : result.score.unanswered.length > 0 ? 'skipped' : 'clean';
      counters.inc('dnsblChecks', { result: outcome });
      if (result.score.unanswered.length > 0)
        log.warn({
          event: 'dnsbl.unanswered',
          client,
          sites: result.score.unanswered.map((s) => s.zone),
        });
    },
    onRecipientError: (address, errors) =>
      log.warn(
        { event: 'recipients.source_failed', rcpt: address, errors },
        'a recipient source did not answer',
      ),
  });
  return { checker, recipients };
}

/** redis.ack replicated with whenReplicasMissing local: a watch of the replicas online. */
function replicaWatch(context: RoleContext, redis: RedisClient): ReplicaWatch | null {
  const { config, log } = context;
  if (config.redis.ack !== 'replicated' || config.redis.whenReplicasMissing !== 'local') return null;
  return new ReplicaWatch(redis, config.redis.replicas, {
    missing: (connected, wanted) =>
      log.error(
        { event: 'redis.replicas_missing', connected, wanted },
        "fewer Redis replicas online than redis.replicas: acknowledging with the primary's durability alone",
      ),
    back: (connected) =>
      log.info(
        { event: 'redis.replicas_back', connected },
        'Redis replicas are back: waiting for them again',
      ),
  });
}
