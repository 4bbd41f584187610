/**
 * Listing the queue: the jobs of a route (or of every route) in one state, a page at a time,
 * in the order that state has: waiting and active oldest first, deferred by next attempt,
 * held by hold time, failed newest first. A route's jobs are in a queue per partition: the
 * pages of each are merged in that order.
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
/** Deepest page (offset + limit) across every route or partition, each read from its start. */
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
  const partitions = await spool.refreshLayout();
  if (query.routeId !== undefined && partitions.length === 1) {
    const page = await routePage(spool, query.routeId, 0, query.state, offset, limit);
    return { total: page.total, jobs: page.jobs.map((j) => j.job) };
  }
  if (offset + limit > MAX_MERGED) {
    throw new QueueOpError(
      'unsupported',
      query.routeId === undefined
        ? `without a route, paging stops at ${MAX_MERGED} jobs: name a route to page further`
        : `across ${partitions.length} partitions, paging stops at ${MAX_MERGED} jobs: narrow the query (bulk selections page each partition on its own)`,
    );
  }
  const ids =
    query.routeId !== undefined
      ? [query.routeId]
      : [...new Set([...(await spool.knownRoutes()), ...routes])].sort();
  // Each queue's first offset+limit jobs, merged by the state's order, then the page cut out.
  const pages = await Promise.all(
    ids.flatMap((id) => partitions.map((p) => routePage(spool, id, p, query.state, 0, offset + limit))),
  );
  // Ties (the same millisecond) in id order: ids are sortable by time too.
  const merged = pages
    .flatMap((p) => p.jobs)
    .sort((a, b) => a.key - b.key || (a.job.jobId < b.job.jobId ? -1 : a.job.jobId > b.job.jobId ? 1 : 0));
  return {
    total: pages.reduce((sum, p) => sum + p.total, 0),
    jobs: merged.slice(offset, offset + limit).map((j) => j.job),
  };
}

/** A page of one route's jobs in one partition (what a bulk selection pages through). */
export async function listPartitionJobs(
  spool: Spool,
  routeId: string,
  partition: number,
  state: QueueState,
  offset: number,
  limit: number,
): Promise<QueuedJob[]> {
  const page = await routePage(spool, routeId, partition, state, offset, limit);
  return page.jobs.map((j) => j.job);
}

async function routePage(
  spool: Spool,
  routeId: string,
  partition: number,
  state: QueueState,
  offset: number,
  limit: number,
): Promise<RoutePage> {
  const queue = spool.queue(routeId, partition);
  const end = offset + limit - 1;
  switch (state) {
    case 'waiting': {
      const [total, jobs] = await Promise.all([
        queue.getJobCountByTypes('waiting', 'prioritized'),
        queue.getJobs(['waiting'], offset, end, true),
      ]);
      // By Moat's own acceptance time: BullMQ's timestamp is taken a moment later, per partition.
      return { total, jobs: present(jobs).map((j) => entry(routeId, j, state, null, j.data.queuedAt)) };
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
      const key = spool.partitionKeys(partition).delayed(routeId);
      const floor = String(heldScoreFloor());
      const [min, max] = state === 'held' ? [floor, '+inf'] : ['-inf', `(${floor}`];
      const [total, ids] = await Promise.all([
        spool.redis.zcount(key, min, max),
        spool.redis.zrangebyscore(key, min, max, 'LIMIT', offset, limit),
      ]);
      const [jobs, dues] = await Promise.all([
        Promise.all(ids.map((id) => queue.getJob(id))),
        dueTimes(spool, routeId, partition, ids),
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

/** Messages looked at (oldest first, in all partitions together) by `oldestJobs`. */
export const OLDEST_JOBS_SCAN = 2000;

/**
 * The jobs in `state` of the oldest queued messages, oldest first: what an operator wants to
 * see first (mail stuck longest). Looks at the `scan` oldest messages of all partitions only.
 */
export async function oldestJobs(
  spool: Spool,
  query: { readonly state: QueueState; readonly routeId?: string | undefined; readonly limit?: number },
  scan = OLDEST_JOBS_SCAN,
): Promise<QueuedJob[]> {
  const limit = Math.min(MAX_PAGE, Math.max(1, query.limit ?? 50));
  const out: QueuedJob[] = [];
  for (const ids of await oldestMessageIds(spool, scan, 100)) {
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
  }
  return out;
}

/**
 * The ids of the `scan` oldest messages across every partition, oldest first, in batches of
 * `batch`: each partition's index is read from its start and the lists merged by time.
 */
export async function oldestMessageIds(spool: Spool, scan: number, batch: number): Promise<string[][]> {
  const partitions = await spool.refreshLayout();
  const each = await Promise.all(
    partitions.map((p) =>
      spool.redis.zrange(spool.partitionKeys(p).messages, '0', String(scan - 1), 'WITHSCORES'),
    ),
  );
  const all: { id: string; at: number }[] = [];
  for (const flat of each) {
    for (let i = 0; i + 1 < flat.length; i += 2) all.push({ id: flat[i] as string, at: Number(flat[i + 1]) });
  }
  all.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const ids = all.slice(0, scan).map((m) => m.id);
  const out: string[][] = [];
  for (let i = 0; i < ids.length; i += batch) out.push(ids.slice(i, i + batch));
  return out;
}
