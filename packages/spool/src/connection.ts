/**
 * Redis connections for the two kinds of users BullMQ's production advice separates:
 * producers (the edge, the admin API) fail fast when Redis is away, so the edge can answer
 * 451 at once; workers wait and retry forever (maxRetriesPerRequest: null).
 *
 * One URL names the deployment: a single Redis (redis://, rediss://, unix://), a primary found
 * through Sentinels (redis-sentinel://), or a Redis Cluster (redis-cluster://seed,seed…),
 * through ioredis's Cluster client, which follows MOVED and ASK redirections itself.
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { coalesceWrites } from './coalesce.js';

export type ConnectionRole = 'producer' | 'worker';

/** A connection to a single Redis (or a Sentinel-managed primary) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export interface ConnectionSettings {
  readonly url: string;
  /** Per-command deadline for producers (ms). */
  readonly commandTimeout?: number;
  readonly name?: string;
}

/**
 * `redis-sentinel://[:password@]host:port[,host:port…]/<master name>[?db=N]`: ask these
 * Sentinels for the current primary, and ask again after every reconnect (failover).
 */
function sentinelOptions(text: string): RedisOptions {
  const m = /^redis-sentinel:\/\/(?:(?:[^:@/]*):([^@/]*)@)?([^/?]+)\/([^/?]+)(?:\?db=(\d+))?$/.exec(text);
  if (!m) throw new Error(`"${text}" is not redis-sentinel://host:port[,host:port]/name[?db=N]`);
  return {
    sentinels: hostList(m[2] ?? ''),
    name: decodeURIComponent(m[3] ?? ''),
    db: Number(m[4] ?? 0),
    ...(m[1] ? { password: decodeURIComponent(m[1]) } : {}),
  };
}

function hostList(text: string): { host: string; port: number }[] {
  return text.split(',').map((hostPort) => {
    const i = hostPort.lastIndexOf(':');
    return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(i + 1)) };
  });
}

/**
 * `redis-cluster://[[user]:password@]host:port[,host:port…][?tls=1]`: seed nodes of a Redis
 * Cluster (any of them; the client learns the rest from CLUSTER SLOTS).
 */
export function clusterSeeds(text: string): {
  seeds: { host: string; port: number }[];
  auth: RedisOptions;
  tls: boolean;
} {
  const m = /^redis-cluster:\/\/(?:([^:@/]*):([^@/]*)@)?([^/?]+)\/?(?:\?(.*))?$/.exec(text);
  if (!m) throw new Error(`"${text}" is not redis-cluster://host:port[,host:port…]`);
  const seeds = hostList(m[3] ?? '');
  if (seeds.some((s) => !s.host || !Number.isInteger(s.port) || s.port < 1 || s.port > 65_535)) {
    throw new Error(`"${text}": every seed must be host:port`);
  }
  const auth: RedisOptions = {
    ...(m[1] ? { username: decodeURIComponent(m[1]) } : {}),
    ...(m[2] ? { password: decodeURIComponent(m[2]) } : {}),
  };
  return { seeds, auth, tls: new URLSearchParams(m[4] ?? '').get('tls') === '1' };
}

export const isClusterUrl = (url: string): boolean => url.startsWith('redis-cluster://');

/** Options for ioredis from a redis://, rediss://, unix:// or redis-sentinel:// URL. */
export function redisOptions(settings: ConnectionSettings, role: ConnectionRole): RedisOptions {
  const sentinel = settings.url.startsWith('redis-sentinel://');
  const url = new URL(sentinel ? 'redis://sentinel' : settings.url);
  const base: RedisOptions = sentinel
    ? sentinelOptions(settings.url)
    : url.protocol === 'unix:'
      ? { path: decodeURIComponent(url.pathname), db: Number(url.searchParams.get('db') ?? 0) }
      : {
          host: url.hostname.replace(/^\[|\]$/g, ''),
          port: Number(url.port || 6379),
          db: Number(url.pathname.slice(1) || 0),
          ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
          ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
          ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
        };
  return { ...base, ...roleOptions(settings, role) };
}

const backoff = (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000);

function roleOptions(settings: ConnectionSettings, role: ConnectionRole): RedisOptions {
  const common: RedisOptions = {
    retryStrategy: backoff,
    ...(settings.name ? { connectionName: settings.name } : {}),
  };
  if (role === 'producer') {
    return {
      ...common,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      ...(settings.commandTimeout ? { commandTimeout: settings.commandTimeout } : {}),
    };
  }
  return { ...common, maxRetriesPerRequest: null, enableReadyCheck: true };
}

/** Options for ioredis's Cluster from a redis-cluster:// URL. */
export function clusterOptions(settings: ConnectionSettings, role: ConnectionRole): ClusterOptions {
  const { auth, tls } = clusterSeeds(settings.url);
  // A node's connection queues what is sent while it connects (the cluster opens them as it
  // first needs them); the cluster's own offline queue is what producers keep off. And it has
  // no ready check: while one runs, ioredis writes commands Redis allows during loading (EVAL,
  // EVALSHA) at once and queues the others (SET), so a message's script would overtake its
  // body. Without it a node is ready when connected (a loading Redis answers LOADING: 451).
  const { enableOfflineQueue: _offline, enableReadyCheck: _check, ...node } = roleOptions(settings, role);
  return {
    redisOptions: { ...node, ...auth, ...(tls ? { tls: {} } : {}), enableReadyCheck: false },
    clusterRetryStrategy: backoff,
    // Queued while the cluster (re)connects, for producers too: without it a command for a node
    // whose connection is still opening is refused and retried on a random node later, after
    // commands sent behind it. Producers are bounded by their commandTimeout (451) instead.
    enableOfflineQueue: true,
    enableReadyCheck: true,
    // Writes and reads go to primaries: a replica may not have the newest message yet.
    scaleReads: 'master',
    // A failover or a slot migration answers MOVED/ASK, or CLUSTERDOWN for a moment: retried.
    maxRedirections: 16,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
  };
}

export function connect(settings: ConnectionSettings, role: ConnectionRole): RedisClient {
  if (isClusterUrl(settings.url)) {
    const cluster = new Cluster(clusterSeeds(settings.url).seeds, clusterOptions(settings, role));
    cluster.on('error', () => {});
    // Every node connection batches the commands each tick issues into one write.
    cluster.on('+node', (node: Redis) => {
      node.on('connect', () => {
        if (node.stream) coalesceWrites(node.stream);
      });
    });
    return cluster;
  }
  const redis = new Redis(redisOptions(settings, role));
  // Connection errors are reported by whoever uses the connection (and ioredis reconnects);
  // without a listener Node would print each one as an unhandled 'error' event.
  redis.on('error', () => {});
  // Each (re)connection has a new socket; batch the commands each tick issues into one write.
  redis.on('connect', () => {
    if (redis.stream) coalesceWrites(redis.stream);
  });
  return redis;
}

/**
 * The connections to every primary: the one Redis, or each primary of a cluster (for what
 * must be asked of each: INFO, SCAN, WAIT).
 */
export function primariesOf(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}

/**
 * The connection to the primary that holds `slot` (a cluster), or the one Redis. Null while a
 * cluster does not know the slot's owner.
 */
export function primaryForSlot(redis: RedisClient, slot: number): Redis | null {
  if (!(redis instanceof Cluster)) return redis;
  const nodeKey = redis.slots[slot]?.[0];
  if (nodeKey === undefined) return null;
  return redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === nodeKey) ?? null;
}

/** Resolves when the connection is ready, or rejects after `timeoutMs` (the client keeps trying). */
export function whenReady(redis: RedisClient, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis was not reachable within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}
