/**
 * The delivery service of one worker process: a BullMQ worker per route and partition (the
 * config's routes, the outbound route, and every route that ever had mail in Redis; the
 * partitions of delivery.partitions, or all; both checked again periodically), one connection
 * pool, one resolver. `stop()` lets active deliveries finish (bounded), then closes everything
 * it opened.
 *
 * delivery.concurrency is per route in the process: it is shared out over the partitions it
 * delivers from (at least one slot each), since mail is spread evenly over them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  compileRelayPolicy,
  type MoatConfig,
  MX_ROUTE_ID,
  parseDestination,
  type RelayPolicy,
  type Route,
  selectPartitions,
} from '@moat/policy';
import {
  type Counters,
  connect,
  followPause,
  spoolFromConfig,
  startRouteWorker,
  whenReady,
} from '@moat/spool';
import type { Logger } from 'pino';
import type { BodyCache } from './body-cache.js';
import { DnsResolver } from './dns-resolver.js';
import { ConnectionPool } from './pool.js';
import { makeProcessor } from './processor.js';

export interface DeliveryOptions {
  readonly config: Readonly<MoatConfig>;
  readonly redisUrl: string;
  readonly log: Logger;
  /** This process's id, written into tracking events. */
  readonly nodeId: string;
  /** How often to look for routes that appeared in Redis (ms). Default 5 s. */
  readonly routeScanInterval?: number;
  /** How long stop() waits for active deliveries before it abandons them to other workers (ms). Default 30 s. */
  readonly stopTimeout?: number;
  /** Close a connection unused this long (ms). Default 5 s. */
  readonly idleTimeout?: number;
  /** Cluster-wide metrics registry (deliveries by route and result, latency). */
  readonly counters?: Counters | undefined;
  /** Bodies the edge of this process queued, handed over in memory (`moat start`). */
  readonly bodies?: BodyCache | undefined;
}

export interface DeliveryService {
  /** The partitions this process delivers from. */
  partitions(): number[];
  /** SMTP connections opened so far. */
  connectionsOpened(): number;
  /**
   * This process's delivery figures for its heartbeat: routes with a worker (deliveryRoutes),
   * deliveries in progress (activeJobs), and the body cache's reads.
   */
  stats(): Record<string, number>;
  stop(): Promise<void>;
}

/** The route a queue belongs to: from the config, or rebuilt from its id (a route an older config had). */
export function routeFor(policy: RelayPolicy, config: Readonly<MoatConfig>, routeId: string): Route {
  const known = policy.routes.get(routeId);
  if (known) return known;
  if (routeId === MX_ROUTE_ID) return { id: MX_ROUTE_ID, hops: [], tls: config.delivery.tls };
  const hops = parseDestination(routeId.split(','));
  if (!hops.ok) throw new Error(`route ${routeId}: ${hops.error}`);
  return { id: routeId, hops: hops.value, tls: config.delivery.tls };
}

export async function startDelivery(options: DeliveryOptions): Promise<DeliveryService> {
  const { config, log } = options;
  const d = config.delivery;
  const policy = compileRelayPolicy(config);
  const redis = connect({ url: options.redisUrl, name: `moat-worker:${options.nodeId}` }, 'worker');
  try {
    await whenReady(redis, 10_000);
  } catch (err) {
    redis.disconnect();
    throw err;
  }
  const spool = spoolFromConfig(config, redis, options.nodeId);
  const pool = new ConnectionPool({
    maxPerHost: d.maxConnectionsPerHost,
    maxMessages: d.maxMessagesPerConnection,
    idleTimeout: options.idleTimeout ?? 5000,
  });
  // Route id → partition → its worker (null while it starts).
  type RouteWorker = ReturnType<typeof startRouteWorker>;
  const workers = new Map<string, Map<number, RouteWorker | null>>();
  let partitions = selectPartitions(d.partitions, spool.partitions().length - 1);
  let stopping = false;

  const startPartition = (
    routeId: string,
    partition: number,
    started: Map<number, RouteWorker | null>,
  ): void => {
    started.set(partition, null);
    // A queue that appeared after its route was paused waits too.
    void followPause(spool, routeId, partition)
      .catch((err: unknown) =>
        log.warn(
          { event: 'delivery.pause_check_failed', route: routeId, partition, err },
          'could not check pause',
        ),
      )
      .then(() => {
        if (stopping) return;
        const worker = startRouteWorker(spool.partitionKeys(partition), routeId, counted, {
          connection: redis,
          concurrency: Math.max(1, Math.ceil(d.concurrency / partitions.length)),
          lockDuration: d.lockDuration,
          stalledInterval: d.stalledInterval,
          name: options.nodeId,
        });
        worker.on('error', (err) =>
          log.warn({ event: 'delivery.worker_error', route: routeId, partition, err }, err.message),
        );
        worker.on('failed', (job, err) =>
          log.error(
            { event: 'delivery.job_failed', route: routeId, partition, job: job?.id, err },
            'a delivery job failed',
          ),
        );
        workers.get(routeId)?.set(partition, worker);
      });
  };

  const ensureRoute = (routeId: string): void => {
    if (stopping) return;
    let started = workers.get(routeId);
    if (started === undefined) {
      let route: Route;
      try {
        route = routeFor(policy, config, routeId);
      } catch (err) {
        log.error(
          { event: 'delivery.route_invalid', route: routeId, err },
          `cannot deliver route ${routeId}`,
        );
        return;
      }
      started = new Map();
      workers.set(routeId, started);
      log.info(
        {
          event: 'delivery.route_started',
          route: routeId,
          hops: route.hops.length,
          tls: route.tls,
          partitions: partitions.length,
        },
        `delivering route ${routeId}`,
      );
    }
    for (const partition of partitions)
      if (!started.has(partition)) startPartition(routeId, partition, started);
  };

  const processor = makeProcessor({
    counters: options.counters,
    bodies: options.bodies,
    spool,
    attempt: {
      resolver: new DnsResolver({ servers: config.dns.servers, timeout: config.dns.timeout }),
      pool,
      settings: {
        helo: config.hostname,
        mxPort: d.mxPort,
        verifyCertificates: d.verifyCertificates,
        connectTimeout: d.connectTimeout,
        commandTimeout: d.commandTimeout,
        relayWaiting: d.concurrency,
      },
      log,
    },
    bounces: { spool, policy, hostname: config.hostname, enabled: d.bounces, onRoute: ensureRoute },
    retry: { schedule: d.retry, lifetime: d.lifetime, delayWarning: d.delayWarning },
    routeOf: (routeId) => routeFor(policy, config, routeId),
    log,
  });

  // Deliveries in progress in this process, for the heartbeat (moat_worker_active_jobs).
  let active = 0;
  const counted: typeof processor = async (...args) => {
    active++;
    try {
      return await processor(...args);
    } finally {
      active--;
    }
  };

  const scan = async () => {
    // Bodies not taken go even while no job comes to take one.
    options.bodies?.expire();
    try {
      // Partitions an edge placed mail in since (redis.partitions raised somewhere).
      const seen = await spool.refreshLayout(true);
      const next = selectPartitions(d.partitions, seen.length - 1);
      if (next.length !== partitions.length) {
        log.info(
          { event: 'delivery.partitions', partitions: next },
          `delivering from ${next.length} partitions`,
        );
        partitions = next;
        for (const routeId of workers.keys()) ensureRoute(routeId);
      }
      for (const routeId of await spool.knownRoutes()) ensureRoute(routeId);
    } catch (err) {
      log.warn({ event: 'delivery.route_scan_failed', err }, 'could not list routes');
    }
  };
  await spool.refreshLayout(true).catch(() => {});
  partitions = selectPartitions(d.partitions, spool.partitions().length - 1);
  for (const routeId of policy.routes.keys()) ensureRoute(routeId);
  ensureRoute(policy.outbound.id);
  await scan();
  const timer = setInterval(() => void scan(), options.routeScanInterval ?? 5000);
  timer.unref();

  return {
    partitions: () => [...partitions],
    connectionsOpened: () => pool.opened,
    stats: () => {
      const bodies = options.bodies;
      return {
        deliveryRoutes: workers.size,
        activeJobs: active,
        ...(bodies ? { bodyCacheHits: bodies.hits, bodyCacheMisses: bodies.misses } : {}),
      };
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      clearInterval(timer);
      log.info({ event: 'delivery.stopping', routes: workers.size }, 'waiting for active deliveries');
      const all = [...workers.values()].flatMap((byPartition) =>
        [...byPartition.values()].filter((w): w is RouteWorker => w !== null),
      );
      const graceful = await within(options.stopTimeout ?? 30_000, Promise.all(all.map((w) => w.close())));
      if (!graceful) {
        // Their jobs stay locked until lockDuration passes; then another worker takes them.
        log.warn(
          { event: 'delivery.stop_timeout' },
          'deliveries still active; leaving them to other workers',
        );
        await within(5000, Promise.all(all.map((w) => w.close(true))));
      }
      pool.close();
      await spool.close();
      redis.disconnect();
      log.info({ event: 'delivery.stopped' }, 'delivery stopped');
    },
  };
}

/** Whether `work` settled within `ms` (it may go on in the background). */
async function within(ms: number, work: Promise<unknown>): Promise<boolean> {
  const limit = sleep(ms, false, { ref: false });
  return Promise.race([work.then(() => true), limit]);
}
