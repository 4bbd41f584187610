/**
 * Bulk actions: select jobs by filter (route, state, sender, recipient domain, age) and act on
 * each, as `postsuper` does for Postfix. Matching jobs are collected first, then acted on one
 * by one; a job that changed meanwhile is reported, not fatal.
 */
import { type ActionOptions, type ActionResult, actOnJob, type QueueAction } from './queue-actions.js';
import { type QueuedJob, QueueOpError, type QueueState } from './queue-jobs.js';
import { listPartitionJobs } from './queue-list.js';
import type { Spool } from './spool.js';

export interface JobFilter {
  readonly routeId?: string | undefined;
  /** Default: every state but active (a job being delivered cannot be acted on). */
  readonly states?: readonly QueueState[] | undefined;
  /** Envelope sender, exact (case-insensitive); "" matches the null sender. */
  readonly sender?: string | undefined;
  /** A recipient domain ("example.com" or "@example.com"): jobs with any recipient there. */
  readonly recipientDomain?: string | undefined;
  /** Only jobs queued at least this long ago (ms). */
  readonly olderThan?: number | undefined;
}

export const DEFAULT_BULK_STATES: readonly QueueState[] = ['waiting', 'deferred', 'held', 'failed'];
export const MAX_BULK = 10_000;
const BATCH = 500;

/** Jobs matching the filter (at most `max`), scanning each state page by page. */
export async function selectJobs(
  spool: Spool,
  filter: JobFilter,
  options: { readonly max?: number; readonly now?: number; readonly routes?: readonly string[] } = {},
): Promise<QueuedJob[]> {
  const max = Math.min(options.max ?? MAX_BULK, MAX_BULK);
  const now = options.now ?? Date.now();
  const routeIds =
    filter.routeId !== undefined
      ? [filter.routeId]
      : [...new Set([...(await spool.knownRoutes()), ...(options.routes ?? [])])].sort();
  const matches = matcher(filter, now);
  const partitions = await spool.refreshLayout();
  const out: QueuedJob[] = [];
  for (const routeId of routeIds) {
    for (const partition of partitions) {
      for (const state of filter.states ?? DEFAULT_BULK_STATES) {
        for (let offset = 0; ; offset += BATCH) {
          const jobs = await listPartitionJobs(spool, routeId, partition, state, offset, BATCH);
          for (const job of jobs) {
            if (!matches(job)) continue;
            out.push(job);
            if (out.length >= max) return out;
          }
          if (jobs.length < BATCH) break;
        }
      }
    }
  }
  return out;
}

export interface BulkResult {
  readonly matched: number;
  readonly results: ActionResult[];
  readonly errors: { readonly routeId: string; readonly jobId: string; readonly error: string }[];
}

/** Act on every matching job; with `dryRun`, only count and list them (as `unchanged` results). */
export async function bulkAction(
  spool: Spool,
  filter: JobFilter,
  action: QueueAction,
  options: ActionOptions & {
    readonly dryRun?: boolean;
    readonly max?: number;
    readonly routes?: readonly string[];
  } = {},
): Promise<BulkResult> {
  const jobs = await selectJobs(spool, filter, options);
  const results: ActionResult[] = [];
  const errors: BulkResult['errors'][number][] = [];
  for (const job of jobs) {
    if (options.dryRun) {
      results.push({ ...pick(job), action, outcome: 'unchanged', state: job.state });
      continue;
    }
    try {
      results.push(await actOnJob(spool, job.routeId, job.jobId, action, options));
    } catch (err) {
      if (!(err instanceof QueueOpError)) throw err;
      errors.push({ routeId: job.routeId, jobId: job.jobId, error: err.message });
    }
  }
  return { matched: jobs.length, results, errors };
}

function pick(job: QueuedJob) {
  return { routeId: job.routeId, jobId: job.jobId, messageId: job.messageId };
}

function matcher(filter: JobFilter, now: number): (job: QueuedJob) => boolean {
  const sender = filter.sender?.toLowerCase();
  const domain =
    filter.recipientDomain === undefined
      ? undefined
      : `@${filter.recipientDomain.toLowerCase().replace(/^@/, '').replace(/\.$/, '')}`;
  return (job) =>
    (sender === undefined || job.sender.toLowerCase() === sender) &&
    (domain === undefined || job.recipients.some((r) => r.toLowerCase().endsWith(domain))) &&
    (filter.olderThan === undefined || now - job.queuedAt >= filter.olderThan);
}
