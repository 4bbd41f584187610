/**
 * Keys of the operator features (holding mail, cluster-wide counters), beside `keys.ts`.
 * Like every key they share the hash tag, so they live in the same Redis Cluster slot.
 */
import type { Keys } from './keys.js';

/** Hash: metric series (JSON `[name, labels]`) → value, summed across every node. */
export function metricsKey(keys: Keys): string {
  return `${keys.root}:metrics`;
}

/**
 * BullMQ's sorted set of a queue's delayed jobs (its documented layout `prefix:queue:delayed`);
 * the score is `timestamp * 0x1000 + sequence`, so `floor(score / 0x1000)` is the due time.
 */
export function delayedKey(keys: Keys, routeId: string): string {
  return `${keys.root}:${keys.queueName(routeId)}:delayed`;
}

/** BullMQ's delayed-set score scale: due time (ms) × 4096. */
export const DELAYED_SCORE_SCALE = 0x1000;
