/**
 * Queue figures for /metrics, read from Redis so every node reports the same numbers: jobs
 * per route and state, whether the route is paused, and the age of its oldest message.
 */
import { heldScoreFloor, type QueueState } from './queue-jobs.js';
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
  const queue = spool.queue(routeId);
  const [paused, c, held] = await Promise.all([
    queue.isPaused(),
    queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
    spool.redis.zcount(spool.keys.delayed(routeId), String(heldScoreFloor()), '+inf'),
  ]);
  return {
    routeId,
    paused,
    counts: {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      deferred: (c.delayed ?? 0) - held,
      held,
      failed: c.failed ?? 0,
    },
  };
}

/**
 * Route id → receive time of its oldest message with a pending job, scanning the oldest
 * `scan` messages (a route whose oldest message is younger than all of those is not found).
 */
export async function oldestByRoute(spool: Spool, scan = OLDEST_SCAN): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for (let offset = 0; offset < scan; offset += BATCH) {
    const ids = await spool.redis.zrange(spool.keys.messages, String(offset), String(offset + BATCH - 1));
    if (ids.length === 0) break;
    const tx = spool.redis.pipeline();
    for (const id of ids) tx.hget(spool.keys.meta(id), 'json').smembers(spool.keys.jobs(id));
    const replies = (await tx.exec()) ?? [];
    ids.forEach((_, i) => {
      const json = replies[2 * i]?.[1] as string | null | undefined;
      const pending = (replies[2 * i + 1]?.[1] as string[] | undefined) ?? [];
      if (!json) return;
      const meta = JSON.parse(json) as MessageMeta;
      for (const r of meta.routes) {
        if (pending.includes(r.jobId) && !found.has(r.routeId)) found.set(r.routeId, meta.receivedAt);
      }
    });
    if (ids.length < BATCH) break;
  }
  return found;
}
