/**
 * Greylisting triplets in Redis, shared by every edge: the first try of a (client network,
 * sender, recipient) is remembered and refused; a retry after `delay` (within `retryWindow`)
 * passes and the triplet is let through for `passLifetime`, renewed on every use. One script
 * per check, so two edges seeing the same retry agree.
 */
import type { RedisClient } from './connection.js';
import type { Keys } from './keys.js';

// KEYS: triplet; ARGV: now, delay, retryWindow, passLifetime (ms). Returns 0 (pass) or ms to wait.
const CHECK = `
local v = redis.call('GET', KEYS[1])
if v == 'pass' then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 0
end
local now = tonumber(ARGV[1])
if v then
  local waited = now - tonumber(v)
  if waited >= tonumber(ARGV[2]) then
    redis.call('SET', KEYS[1], 'pass', 'PX', ARGV[4])
    return 0
  end
  return tonumber(ARGV[2]) - waited
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return tonumber(ARGV[2])
`;

export interface GreylistTimes {
  readonly delay: number;
  readonly retryWindow: number;
  readonly passLifetime: number;
}

type Scripted = RedisClient & { moatGreylist(key: string, ...args: string[]): Promise<number> };

export class Greylist {
  readonly #redis: Scripted;
  readonly #keys: Keys;

  constructor(redis: RedisClient, keys: Keys) {
    if (!('moatGreylist' in redis)) redis.defineCommand('moatGreylist', { numberOfKeys: 1, lua: CHECK });
    this.#redis = redis as Scripted;
    this.#keys = keys;
  }

  /** What the triplet's record says, without making or renewing one (moat policy test). */
  async peek(triplet: string, times: GreylistTimes, now = Date.now()): Promise<'pass' | 'unknown' | number> {
    const v = await this.#redis.get(this.#keys.greylist(triplet));
    if (v === null) return 'unknown';
    if (v === 'pass') return 'pass';
    const waited = now - Number(v);
    return waited >= times.delay ? 'pass' : times.delay - waited;
  }

  /** 0: the triplet may pass; otherwise how many ms until a retry will. */
  check(triplet: string, times: GreylistTimes, now = Date.now()): Promise<number> {
    return this.#redis.moatGreylist(
      this.#keys.greylist(triplet),
      String(now),
      String(times.delay),
      String(times.retryWindow),
      String(times.passLifetime),
    );
  }
}
