/**
 * Rate limits that every edge enforces together: the counters are in Redis, kept by
 * rate-limiter-flexible (atomic increments with expiry, one script per consume), so two edges
 * behind a load balancer count one client as one. A Redis failure is an error (the edge answers
 * 451 as for spooling), never a pass and never a refusal.
 */
import type { Rate } from '@moat/policy';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RedisClient } from './connection.js';
import type { Keys } from './keys.js';

export class RateLimits {
  readonly #redis: RedisClient;
  readonly #keys: Keys;
  readonly #limiters = new Map<string, RateLimiterRedis>();

  constructor(redis: RedisClient, keys: Keys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /** Counts `points` for `key` under `limit`; false when that goes over `rate`. Rejects when Redis fails. */
  async consume(limit: string, key: string, rate: Rate, points = 1): Promise<boolean> {
    try {
      await this.#limiter(limit, rate).consume(key, points);
      return true;
    } catch (err) {
      if (err instanceof RateLimiterRes) return false;
      throw err;
    }
  }

  /** How many points `key` has used in the current window, without counting one (moat policy test). */
  async used(limit: string, key: string, rate: Rate): Promise<number> {
    const res = await this.#limiter(limit, rate).get(key);
    return res?.consumedPoints ?? 0;
  }

  #limiter(limit: string, rate: Rate): RateLimiterRedis {
    const id = `${limit}/${rate.count}/${rate.perMs}`;
    let limiter = this.#limiters.get(id);
    if (limiter === undefined) {
      limiter = new RateLimiterRedis({
        storeClient: this.#redis,
        keyPrefix: this.#keys.rateLimit(limit),
        points: rate.count,
        duration: Math.max(1, Math.round(rate.perMs / 1000)),
      });
      this.#limiters.set(id, limiter);
    }
    return limiter;
  }
}
