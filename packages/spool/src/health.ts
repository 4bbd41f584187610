/**
 * Redis facts the edge needs before and while taking mail: the eviction policy must be
 * noeviction (an evicted body is a lost message), and memory use past a threshold means
 * back-pressure (452) rather than risking eviction or an OOM error mid-write.
 */
import type { Redis } from 'ioredis';
import { primariesOf, type RedisClient } from './connection.js';

export interface MemoryInfo {
  readonly used: number;
  /** 0 when Redis has no maxmemory (no back-pressure possible). */
  readonly max: number;
  readonly policy: string;
}

/** The memory of the Redis, or of the fullest primary of a cluster (the first to refuse writes). */
export async function memoryInfo(redis: RedisClient): Promise<MemoryInfo> {
  const infos = await Promise.all(primariesOf(redis).map(nodeMemory));
  if (infos.length === 0) throw new Error('no Redis primary is known yet');
  const ratio = (m: MemoryInfo) => (m.max > 0 ? m.used / m.max : 0);
  const fullest = infos.reduce((a, b) => (ratio(b) > ratio(a) ? b : a), infos[0] as MemoryInfo);
  // Every primary must be noeviction: report the first that is not.
  const evicting = infos.find((m) => m.policy !== 'noeviction');
  return evicting ? { ...fullest, policy: evicting.policy } : fullest;
}

async function nodeMemory(redis: Redis): Promise<MemoryInfo> {
  const text = await redis.info('memory');
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return {
    used: Number(field('used_memory')),
    max: Number(field('maxmemory')),
    policy: field('maxmemory_policy'),
  };
}

/** Throws a message saying what to change when Redis could evict Moat's data. */
export async function assertNoEviction(redis: RedisClient): Promise<void> {
  const { policy } = await memoryInfo(redis);
  if (policy !== 'noeviction') {
    throw new Error(
      `Redis maxmemory-policy is "${policy}", but Moat needs "noeviction": with any other policy Redis may delete queued mail when memory runs short. Set "maxmemory-policy noeviction" in redis.conf (or CONFIG SET maxmemory-policy noeviction).`,
    );
  }
}

/**
 * Watches Redis memory every `intervalMs`; `full` is true while used/max passes `threshold`.
 * When Redis cannot be asked, the last answer stands (the write itself will fail with 451).
 */
export class MemoryGuard {
  #full = false;
  #timer: NodeJS.Timeout | undefined;
  #last: MemoryInfo | null = null;
  /** Bytes this process queued since the INFO the last figure came from was sent. */
  #since = 0;

  constructor(
    private readonly redis: RedisClient,
    private readonly threshold: number,
    private readonly intervalMs = 250,
  ) {}

  /**
   * Whether new mail must wait (452): Redis's used memory as last read, plus what this process
   * queued since, passes `threshold` of maxmemory. Counting its own writes between reads keeps
   * an edge taking mail fast from running Redis into maxmemory before the next read.
   */
  get full(): boolean {
    return this.#full || this.#over(this.#since);
  }

  get last(): MemoryInfo | null {
    return this.#last;
  }

  /** A message of `bytes` was queued (its Redis memory is about that plus MESSAGE_OVERHEAD). */
  note(bytes: number): void {
    this.#since += bytes + MESSAGE_OVERHEAD;
  }

  async check(): Promise<boolean> {
    const noted = this.#since;
    try {
      const info = await memoryInfo(this.redis);
      this.#last = info;
      // What was queued before the request went out is in `used` now.
      this.#since -= noted;
      this.#full = this.#over(0);
    } catch {
      // Keep the previous state; unreachable Redis is reported by the write path.
    }
    return this.full;
  }

  start(): void {
    if (this.#timer) return;
    void this.check();
    this.#timer = setInterval(() => void this.check(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #over(extra: number): boolean {
    const info = this.#last;
    return info !== null && info.max > 0 && (info.used + extra) / info.max >= this.threshold;
  }
}

/** Redis memory of a queued message besides its body (meta, job, index; measured, bench queue). */
export const MESSAGE_OVERHEAD = 4096;
