/**
 * How many replicas the primary has now, for `redis.ack: replicated` with
 * `redis.whenReplicasMissing: local`: asked every second (INFO replication, one command per
 * edge per second, not per message), so that while fewer replicas are connected than asked
 * for, the edge acknowledges with the primary's durability alone instead of waiting for a
 * WAIT that cannot succeed, and waits for replicas again as soon as they are back.
 */
import { primariesOf, type RedisClient } from './connection.js';

export interface ReplicaEvents {
  missing(connected: number, wanted: number): void;
  back(connected: number): void;
}

export class ReplicaWatch {
  readonly #redis: RedisClient;
  readonly #wanted: number;
  readonly #events: ReplicaEvents;
  readonly #intervalMs: number;
  #connected: number | null = null;
  #missing = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(redis: RedisClient, wanted: number, events: ReplicaEvents, intervalMs = 1000) {
    this.#redis = redis;
    this.#wanted = wanted;
    this.#events = events;
    this.#intervalMs = intervalMs;
  }

  async start(): Promise<void> {
    await this.check();
    this.#timer = setInterval(() => void this.check(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  /** Replicas online now (null: not known yet, or Redis did not answer). */
  get connected(): number | null {
    return this.#connected;
  }

  /** Fewer replicas online than redis.replicas, as last seen. */
  get missing(): boolean {
    return this.#missing;
  }

  /** Asks now; resolves with the count (null when Redis did not answer). */
  async check(): Promise<number | null> {
    try {
      // On a cluster, the primary with the fewest replicas online is what counts.
      const infos = await Promise.all(primariesOf(this.#redis).map((node) => node.info('replication')));
      if (infos.length === 0) throw new Error('no primary known');
      const online = Math.min(
        ...infos.map((info) => [...info.matchAll(/^slave\d+:.*\bstate=online\b/gm)].length),
      );
      this.#connected = online;
      const missing = online < this.#wanted;
      if (missing && !this.#missing) this.#events.missing(online, this.#wanted);
      if (!missing && this.#missing) this.#events.back(online);
      this.#missing = missing;
      return online;
    } catch {
      this.#connected = null;
      return null;
    }
  }
}
