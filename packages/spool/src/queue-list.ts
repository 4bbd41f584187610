/**
 * Listing the queue: the jobs of a route (or of every route) in one state, a page at a time,
 * in the order that state has: waiting and active oldest first, deferred by next attempt,
 * held by hold time, failed newest first.
 */
import type { Job } from 'bullmq';
import {
  describeJob,
  dueTimes,
  heldScoreFloor,
  loadJob,
  type QueuedJob,
  QueueOpError,
  type QueueState,
} from './queue-jobs.js';
import type { Spool } from './spool.js';
import type { DeliveryJob } from './types.js';

export interface ListQuery {
  /** One route; without it, every route (known to the spool, plus `routes`). */
  readonly routeId?: string | undefined;
  readonly state: QueueState;
  readonly offset?: number;
  readonly limit?: number;
}

export interface JobPage {
  /** Jobs in that state on the route(s), all pages together. */
  readonly total: number;
  readonly jobs: QueuedJob[];
}

export const MAX_PAGE = 500;
/** Deepest page (offset + limit) across every route, each route read from its start. */
export const MAX_MERGED = 10_000;

interface RoutePage {
  readonly total: number;
  readonly jobs: { readonly job: QueuedJob; readonly key: number }[];
}

/** A page of jobs; `routes` adds route ids (e.g. from the config) to the ones the spool knows. */
export async function listJobs(
  spool: Spool,
  query: ListQuery,
  routes: readonly string[] = [],
): Promise<JobPage> {
  const offset = Math.max(0, query.offset ?? 0);
  const limit = Math.min(MAX_PAGE, Math.max(1, query.limit ?? 50));
  if (query.routeId !== undefined) {
    const page = await routePage(spool, query.routeId, query.state, offset, limit);
    return { total: page.total, jobs: page.jobs.map((j) => j.job) };
  }
  if (offset + limit > MAX_MERGED) {
    throw new QueueOpError(
      'unsupported',
      `without a route, paging stops at ${MAX_MERGED} jobs: name a route to page further`,
    );
  }
  const ids = [...new Set([...(await spool.knownRoutes()), ...routes])].sort();
  // Each route's first offset+limit jobs, merged by the state's order, then the page cut out.
  const pages = await Promise.all(ids.map((id) => routePage(spool, id, query.state, 0, offset + limit)));
  const merged = pages.flatMap((p) => p.jobs).sort((a, b) => a.key - b.key);
  return {
    total: pages.reduce((sum, p) => sum + p.total, 0),
    jobs: merged.slice(offset, offset + limit).map((j) => j.job),
  };
}

async function routePage(
  spool: Spool,
  routeId: string,
  state: QueueState,
  offset: number,
  limit: number,
): Promise<RoutePage> {
  const queue = spool.queue(routeId);
  const end = offset + limit - 1;
  switch (state) {
    case 'waiting': {
      const [total, jobs] = await Promise.all([
        queue.getJobCountByTypes('waiting', 'prioritized'),
        queue.getJobs(['waiting'], offset, end, true),
      ]);
      return { total, jobs: present(jobs).map((j) => entry(routeId, j, state, null, j.timestamp)) };
    }
    case 'active': {
      const [total, jobs] = await Promise.all([
        queue.getActiveCount(),
        queue.getJobs(['active'], offset, end, true),
      ]);
      return {
        total,
        jobs: present(jobs).map((j) => entry(routeId, j, state, null, j.processedOn ?? j.timestamp)),
      };
    }
    case 'failed': {
      const [total, jobs] = await Promise.all([
        queue.getFailedCount(),
        queue.getJobs(['failed'], offset, end, false),
      ]);
      return {
        total,
        jobs: present(jobs).map((j) => entry(routeId, j, state, null, -(j.finishedOn ?? j.timestamp))),
      };
    }
    case 'deferred':
    case 'held': {
      const key = spool.keys.delayed(routeId);
      const floor = String(heldScoreFloor());
      const [min, max] = state === 'held' ? [floor, '+inf'] : ['-inf', `(${floor}`];
      const [total, ids] = await Promise.all([
        spool.redis.zcount(key, min, max),
        spool.redis.zrangebyscore(key, min, max, 'LIMIT', offset, limit),
      ]);
      const [jobs, dues] = await Promise.all([
        Promise.all(ids.map((id) => queue.getJob(id))),
        dueTimes(spool, routeId, ids),
      ]);
      const out: RoutePage['jobs'][number][] = [];
      jobs.forEach((job, i) => {
        if (!job) return;
        const due = dues[i] ?? null;
        const held = (job.data as { held?: { at: number } }).held;
        out.push(entry(routeId, job, state, due, state === 'held' ? (held?.at ?? due ?? 0) : (due ?? 0)));
      });
      return { total, jobs: out };
    }
  }
}

function present(jobs: (Job<DeliveryJob> | undefined)[]): Job<DeliveryJob>[] {
  return jobs.filter((j): j is Job<DeliveryJob> => j !== undefined && j !== null);
}

function entry(routeId: string, job: Job<DeliveryJob>, state: QueueState, due: number | null, key: number) {
  return { job: describeJob(routeId, job, state, due), key };
}

/** Messages looked at (oldest first) by `oldestJobs`. */
export const OLDEST_JOBS_SCAN = 2000;

/**
 * The jobs in `state` of the oldest queued messages, oldest first: what an operator wants to
 * see first (mail stuck longest). Looks at the `scan` oldest messages only.
 */
export async function oldestJobs(
  spool: Spool,
  query: { readonly state: QueueState; readonly routeId?: string | undefined; readonly limit?: number },
  scan = OLDEST_JOBS_SCAN,
): Promise<QueuedJob[]> {
  const limit = Math.min(MAX_PAGE, Math.max(1, query.limit ?? 50));
  const out: QueuedJob[] = [];
  const batch = 100;
  for (let offset = 0; offset < scan && out.length < limit; offset += batch) {
    const ids = await spool.redis.zrange(spool.keys.messages, String(offset), String(offset + batch - 1));
    if (ids.length === 0) break;
    const metas = await Promise.all(ids.map((id) => spool.readMeta(id)));
    for (const meta of metas) {
      for (const r of meta?.routes ?? []) {
        if (query.routeId !== undefined && r.routeId !== query.routeId) continue;
        const found = await loadJob(spool, r.routeId, r.jobId);
        if (found?.state !== query.state) continue;
        out.push(describeJob(r.routeId, found.job, found.state, found.due));
        if (out.length >= limit) return out;
      }
    }
    if (ids.length < batch) break;
  }
  return out;
}
