/**
 * Route control across every node: pause (the internal server is down for maintenance: mail
 * waits, the edge keeps accepting), resume (the backlog drains), and counts. The paused flag
 * lives in Redis (BullMQ's queue meta), so it holds for every worker and survives restarts.
 *
 * A route has a queue in every partition. Partition 0's is the one that says whether the route
 * is paused: pause sets it first and resume clears it last, and a worker that starts on a
 * partition's queue pauses it first when partition 0's is paused (`followPause`), so a queue
 * that appears after the pause (a partition added) does not deliver.
 */
import type { Spool } from './spool.js';

export interface RouteStatus {
  readonly routeId: string;
  readonly queue: string;
  readonly paused: boolean;
  readonly counts: {
    readonly waiting: number;
    readonly active: number;
    readonly delayed: number;
    readonly failed: number;
  };
}

async function register(spool: Spool, routeId: string): Promise<void> {
  await spool.redis.hsetnx(
    spool.keys.routes,
    routeId,
    JSON.stringify({ queue: spool.keys.queueName(routeId), since: Date.now() }),
  );
}

export async function pauseRoute(spool: Spool, routeId: string): Promise<void> {
  await register(spool, routeId);
  const [first, ...rest] = await spool.refreshLayout(true);
  await spool.queue(routeId, first).pause();
  await Promise.all(rest.map((p) => spool.queue(routeId, p).pause()));
}

export async function resumeRoute(spool: Spool, routeId: string): Promise<void> {
  await register(spool, routeId);
  const [first, ...rest] = await spool.refreshLayout(true);
  await Promise.all(rest.map((p) => spool.queue(routeId, p).resume()));
  await spool.queue(routeId, first).resume();
}

/** Pauses a partition's queue of a route when the route is paused (before a worker starts on it). */
export async function followPause(spool: Spool, routeId: string, partition: number): Promise<void> {
  if (partition === 0) return;
  const queue = spool.queue(routeId, partition);
  const [paused, own] = await Promise.all([spool.queue(routeId, 0).isPaused(), queue.isPaused()]);
  if (paused && !own) await queue.pause();
}

type Counts = { -readonly [K in keyof RouteStatus['counts']]: number };

export async function routeStatus(spool: Spool, routeId: string): Promise<RouteStatus> {
  const partitions = await spool.refreshLayout();
  const [paused, ...each] = await Promise.all([
    spool.queue(routeId, 0).isPaused(),
    ...partitions.map((p) =>
      spool.queue(routeId, p).getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
    ),
  ]);
  const counts: Counts = { waiting: 0, active: 0, delayed: 0, failed: 0 };
  for (const c of each as Record<string, number>[]) {
    counts.waiting += (c.waiting ?? 0) + (c.prioritized ?? 0);
    counts.active += c.active ?? 0;
    counts.delayed += c.delayed ?? 0;
    counts.failed += c.failed ?? 0;
  }
  return { routeId, queue: spool.keys.queueName(routeId), paused: paused as boolean, counts };
}

/** Status of every route that ever had mail, plus any extra ids (routes from the config). */
export async function allRouteStatus(spool: Spool, extra: readonly string[] = []): Promise<RouteStatus[]> {
  const ids = [...new Set([...(await spool.knownRoutes()), ...extra])].sort();
  return Promise.all(ids.map((id) => routeStatus(spool, id)));
}
