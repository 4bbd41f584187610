/**
 * Bodies this process has just queued, kept in memory for its own delivery (`moat start`), so
 * that delivering them does not read them back from Redis: at 1 MB that read is a megabyte out
 * of Redis, through the kernel and through the client's parser, for bytes the process had a
 * moment before. Redis stays the store: a body is put here only once it is durable there, and
 * a miss (not admitted, expired, another node's message) reads it from Redis as before.
 *
 * Admission is first come, first kept: a body that would take the cache over its budget is not
 * admitted, rather than pushing out older ones. The queues are first in, first out, so the
 * oldest bodies are the next to be delivered; evicting them for newer ones would make every
 * read a miss exactly when delivery falls behind.
 */
export interface BodyCacheOptions {
  /** Bytes of bodies held at most (0: the cache holds nothing). */
  readonly budget: number;
  /** A body not taken this long (ms) is dropped: its job was deferred, deleted or went elsewhere. */
  readonly ttl: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

interface Entry {
  readonly body: Buffer;
  readonly at: number;
}

export class BodyCache {
  readonly #options: BodyCacheOptions;
  readonly #now: () => number;
  /** In the order put: the oldest first, for expiry. */
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;
  /** Reads answered from memory and from Redis, for tests and the benchmark notes. */
  hits = 0;
  misses = 0;

  constructor(options: BodyCacheOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Keep a durable message's body; false when it was not admitted (over the budget). */
  put(messageId: string, body: Buffer): boolean {
    this.expire();
    if (this.#entries.has(messageId)) return true;
    if (this.#bytes + body.length > this.#options.budget) return false;
    this.#entries.set(messageId, { body, at: this.#now() });
    this.#bytes += body.length;
    return true;
  }

  /** The body, or undefined; it stays until delete() or its expiry (a message may have several jobs). */
  get(messageId: string): Buffer | undefined {
    this.expire();
    const entry = this.#entries.get(messageId);
    if (entry) this.hits++;
    else this.misses++;
    return entry?.body;
  }

  /** The message is gone (delivered on every route, bounced, deleted). */
  delete(messageId: string): void {
    const entry = this.#entries.get(messageId);
    if (!entry) return;
    this.#entries.delete(messageId);
    this.#bytes -= entry.body.length;
  }

  /** Drop the bodies older than the ttl (also done by put and get; the delivery service calls it while idle). */
  expire(): void {
    const oldest = this.#now() - this.#options.ttl;
    for (const [id, entry] of this.#entries) {
      if (entry.at > oldest) return;
      this.delete(id);
    }
  }
}

/** How long a body waits to be taken before it goes (its job was deferred, deleted, or taken elsewhere). */
export const BODY_TTL_MS = 60_000;

/** The cache of a process with delivery.bodyCache bytes (null when 0: off). */
export function bodyCacheFor(budget: number): BodyCache | null {
  return budget > 0 ? new BodyCache({ budget, ttl: BODY_TTL_MS }) : null;
}
