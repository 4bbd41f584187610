/** Node heartbeats: every node says who it is every few seconds; the admin API lists the live ones. */
import type { RedisClient } from './connection.js';
import type { Keys } from './keys.js';

export interface NodeInfo {
  readonly id: string;
  readonly hostname: string;
  readonly pid: number;
  readonly roles: readonly string[];
  readonly version: string;
  /** The Node.js running the node (process.version, "v24.22.3"); absent in heartbeats of Moat before 0.2. */
  readonly nodeVersion?: string;
  readonly startedAt: number;
  readonly lastSeen?: number;
  /** Free-form figures a role reports (sessions, active jobs, load). */
  readonly stats?: Record<string, number>;
}

export class Heartbeat {
  #timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    private readonly info: () => NodeInfo,
    private readonly intervalMs = 5000,
  ) {}

  async beat(): Promise<void> {
    const now = Date.now();
    const info = { ...this.info(), lastSeen: now };
    await this.redis
      .multi()
      .set(this.keys.node(info.id), JSON.stringify(info), 'PX', this.intervalMs * 3)
      .zadd(this.keys.nodes, now, info.id)
      .exec();
  }

  /** Starts beating; resolves when the first beat is written (or has failed: beats go on regardless). */
  start(): Promise<void> {
    this.#timer = setInterval(() => void this.beat().catch(() => {}), this.intervalMs);
    this.#timer.unref();
    return this.beat().catch(() => {});
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const id = this.info().id;
    await this.redis
      .multi()
      .del(this.keys.node(id))
      .zrem(this.keys.nodes, id)
      .exec()
      .catch(() => {});
  }
}

/** The nodes whose heartbeat has not expired. */
export async function liveNodes(redis: RedisClient, keys: Keys): Promise<NodeInfo[]> {
  const ids = await redis.zrange(keys.nodes, '0', '-1');
  if (ids.length === 0) return [];
  const values = await redis.mget(ids.map((id) => keys.node(id)));
  const stale = ids.filter((_, i) => values[i] === null);
  if (stale.length > 0) await redis.zrem(keys.nodes, ...stale);
  return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as NodeInfo);
}
