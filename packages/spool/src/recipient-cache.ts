/**
 * What recipient validation learned, shared by every edge: "known" for days, "unknown" for
 * hours. While every source of a domain is away (Exchange down for maintenance), a recipient
 * known here is still accepted. The admin API lists and flushes it by address or domain.
 */
import { primariesOf, type RedisClient } from './connection.js';
import type { Keys } from './keys.js';

export type CachedRecipient = 'known' | 'unknown';

export interface CachedRecipientEntry {
  readonly address: string;
  readonly verdict: CachedRecipient;
  /** ms left before it is asked again. */
  readonly ttlMs: number;
}

export class RecipientCache {
  readonly #redis: RedisClient;
  readonly #keys: Keys;

  constructor(redis: RedisClient, keys: Keys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  async get(address: string): Promise<CachedRecipient | null> {
    const v = await this.#redis.get(this.#keys.recipient(address));
    return v === 'known' || v === 'unknown' ? v : null;
  }

  async set(address: string, verdict: CachedRecipient, ttlMs: number): Promise<void> {
    await this.#redis.set(this.#keys.recipient(address), verdict, 'PX', ttlMs);
  }

  /** One address (contains "@"), a domain, or everything (null); at most `limit`. */
  async list(what: string | null, limit = 1000): Promise<CachedRecipientEntry[]> {
    const keys = what?.includes('@') ? [this.#keys.recipient(what)] : await this.#scan(what, limit);
    if (keys.length === 0) return [];
    // Command by command (sent together): on a cluster the keys are in many slots.
    const replies = await Promise.all(
      keys.map((key) => Promise.all([this.#redis.get(key), this.#redis.pttl(key)])),
    );
    const out: CachedRecipientEntry[] = [];
    keys.forEach((key, i) => {
      const [verdict, ttl] = replies[i] ?? [null, -1];
      if (verdict !== 'known' && verdict !== 'unknown') return;
      out.push({ address: addressOf(key), verdict, ttlMs: ttl });
    });
    return out.sort((a, b) => a.address.localeCompare(b.address));
  }

  /** Forgets one address, a domain, or everything; resolves with how many were forgotten. */
  async flush(what: string | null): Promise<number> {
    const keys = what?.includes('@')
      ? [this.#keys.recipient(what)]
      : await this.#scan(what, Number.POSITIVE_INFINITY);
    let deleted = 0;
    // One key per UNLINK: on a cluster the keys are in many slots.
    for (let i = 0; i < keys.length; i += 500) {
      const counts = await Promise.all(keys.slice(i, i + 500).map((key) => this.#redis.unlink(key)));
      deleted += counts.reduce((sum, n) => sum + n, 0);
    }
    return deleted;
  }

  /** SCAN every primary (a cluster's keys are spread over all of them). */
  async #scan(domain: string | null, limit: number): Promise<string[]> {
    const keys: string[] = [];
    const pattern = this.#keys.recipientPattern(domain);
    for (const node of primariesOf(this.#redis)) {
      let cursor = '0';
      do {
        const [next, batch] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0' && keys.length < limit);
      if (keys.length >= limit) break;
    }
    return keys.slice(0, limit);
  }
}

/** "{moat}:rcpt:example.com:bob" → "bob@example.com". */
function addressOf(key: string): string {
  const rest = key.slice(key.indexOf(':rcpt:') + ':rcpt:'.length);
  const colon = rest.indexOf(':');
  return `${rest.slice(colon + 1)}@${rest.slice(0, colon)}`;
}
