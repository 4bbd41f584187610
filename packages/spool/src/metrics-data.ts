/**
 * Queue figures for /metrics, read from Redis so every node reports the same numbers: jobs
 * per route and state, whether the route is paused, and the age of its oldest message.
 */
import { slotOf } from './keys.js';
import { heldScoreFloor, type QueueState } from './queue-jobs.js';
import { oldestMessageIds } from './queue-list.js';
import type { Spool } from './spool.js';
import type { MessageMeta } from './types.js';

export interface RouteFigures {
  readonly routeId: string;
  readonly paused: boolean;
  readonly counts: Readonly<Record<QueueState, number>>;
  /** When the oldest message still pending on this route was received (ms), or null. */
  readonly oldestQueuedAt: number | null;
}

/** Messages looked at (oldest first) to find each route's oldest one. */
export const OLDEST_SCAN = 5000;
const BATCH = 200;

export async function routeFigures(spool: Spool, routes: readonly string[] = []): Promise<RouteFigures[]> {
  const ids = [...new Set([...(await spool.knownRoutes()), ...routes])].sort();
  const [oldest, rows] = await Promise.all([
    oldestByRoute(spool),
    Promise.all(ids.map((id) => countsOf(spool, id))),
  ]);
  return rows.map((row) => {
    const pending = Object.values(row.counts).some((n) => n > 0);
    return { ...row, oldestQueuedAt: pending ? (oldest.get(row.routeId) ?? null) : null };
  });
}

async function countsOf(spool: Spool, routeId: string): Promise<Omit<RouteFigures, 'oldestQueuedAt'>> {
  const partitions = await spool.refreshLayout();
  const floor = String(heldScoreFloor());
  const [paused, ...each] = await Promise.all([
    spool.queue(routeId, 0).isPaused(),
    ...partitions.map(async (p) => {
      const [c, held] = await Promise.all([
        spool.queue(routeId, p).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
        spool.redis.zcount(spool.partitionKeys(p).delayed(routeId), floor, '+inf'),
      ]);
      return { c, held };
    }),
  ]);
  const counts: Record<QueueState, number> = { waiting: 0, active: 0, deferred: 0, held: 0, failed: 0 };
  for (const { c, held } of each as { c: Record<string, number>; held: number }[]) {
    counts.waiting += (c.waiting ?? 0) + (c.prioritized ?? 0);
    counts.active += c.active ?? 0;
    counts.deferred += (c.delayed ?? 0) - held;
    counts.held += held;
    counts.failed += c.failed ?? 0;
  }
  return { routeId, paused: paused as boolean, counts };
}

/**
 * Route id → receive time of its oldest message with a pending job, scanning the oldest
 * `scan` messages (a route whose oldest message is younger than all of those is not found).
 */
export async function oldestByRoute(spool: Spool, scan = OLDEST_SCAN): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for (const ids of await oldestMessageIds(spool, scan, BATCH)) {
    // Oldest first across partitions; each message's two reads go to its own partition's slot.
    const replies = await Promise.all(
      ids.map((id) => {
        const k = spool.keysOf(id);
        return Promise.all([spool.redis.hget(k.meta(id), 'json'), spool.redis.smembers(k.jobs(id))]);
      }),
    );
    replies.forEach(([json, pending]) => {
      if (!json) return;
      const meta = JSON.parse(json) as MessageMeta;
      for (const r of meta.routes) {
        if (pending.includes(r.jobId) && !found.has(r.routeId)) found.set(r.routeId, meta.receivedAt);
      }
    });
  }
  return found;
}

export interface PartitionFigures {
  readonly partition: number;
  /** Its hash tag, e.g. "{moat:p7}": the prefix of all its keys. */
  readonly tag: string;
  /** The Redis Cluster slot of its keys. */
  readonly slot: number;
  /** Messages it holds (queued, not yet released). */
  readonly messages: number;
  /** Whether this spool places new mail in it. */
  readonly placing: boolean;
}

/**
 * Every partition that may hold mail, with how much it holds: after a change of
 * redis.partitions, partition 0 (or the ones above the new count) drain while new mail spreads.
 */
export async function partitionFigures(spool: Spool): Promise<PartitionFigures[]> {
  const partitions = await spool.refreshLayout(true);
  const counts = await Promise.all(partitions.map((p) => spool.redis.zcard(spool.partitionKeys(p).messages)));
  return partitions.map((partition, i) => {
    const tag = spool.partitionKeys(partition).root;
    return {
      partition,
      tag,
      slot: slotOf(tag),
      messages: counts[i] ?? 0,
      placing: spool.placement > 1 ? partition >= 1 && partition <= spool.placement : partition === 0,
    };
  });
}
