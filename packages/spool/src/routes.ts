/**
 * Route control across every node: pause (the internal server is down for maintenance: mail
 * waits, the edge keeps accepting), resume (the backlog drains), and counts. The paused flag
 * lives in Redis (BullMQ's queue meta), so it holds for every worker and survives restarts.
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
  await spool.queue(routeId).pause();
}

export async function resumeRoute(spool: Spool, routeId: string): Promise<void> {
  await register(spool, routeId);
  await spool.queue(routeId).resume();
}

export async function routeStatus(spool: Spool, routeId: string): Promise<RouteStatus> {
  const queue = spool.queue(routeId);
  const [paused, c] = await Promise.all([
    queue.isPaused(),
    queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed'),
  ]);
  return {
    routeId,
    queue: queue.name,
    paused,
    counts: {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      failed: c.failed ?? 0,
    },
  };
}

/** Status of every route that ever had mail, plus any extra ids (routes from the config). */
export async function allRouteStatus(spool: Spool, extra: readonly string[] = []): Promise<RouteStatus[]> {
  const ids = [...new Set([...(await spool.knownRoutes()), ...extra])].sort();
  return Promise.all(ids.map((id) => routeStatus(spool, id)));
}
