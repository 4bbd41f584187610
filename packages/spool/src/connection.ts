/**
 * Redis connections for the two kinds of users BullMQ's production advice separates:
 * producers (the edge, the admin API) fail fast when Redis is away, so the edge can answer
 * 451 at once; workers wait and retry forever (maxRetriesPerRequest: null).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { coalesceWrites } from './coalesce.js';

export type ConnectionRole = 'producer' | 'worker';

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
  const sentinels = (m[2] ?? '').split(',').map((hostPort) => {
    const i = hostPort.lastIndexOf(':');
    return { host: hostPort.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(hostPort.slice(i + 1)) };
  });
  return {
    sentinels,
    name: decodeURIComponent(m[3] ?? ''),
    db: Number(m[4] ?? 0),
    ...(m[1] ? { password: decodeURIComponent(m[1]) } : {}),
  };
}

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
  const reconnect = { retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 6), 2000) };
  if (role === 'producer') {
    return {
      ...base,
      ...reconnect,
      ...(settings.name ? { connectionName: settings.name } : {}),
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      ...(settings.commandTimeout ? { commandTimeout: settings.commandTimeout } : {}),
    };
  }
  return {
    ...base,
    ...reconnect,
    ...(settings.name ? { connectionName: settings.name } : {}),
    maxRetriesPerRequest: null,
    enableReadyCheck: true,
  };
}

export function connect(settings: ConnectionSettings, role: ConnectionRole): Redis {
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

/** Resolves when the connection is ready, or rejects after `timeoutMs` (the client keeps trying). */
export function whenReady(redis: Redis, timeoutMs = 5000): Promise<void> {
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
