/**
 * What an operator does to queued mail, one job (a message's recipients on one route) at a
 * time: retry now, hold, release, delete. Each acts through BullMQ's own API, refuses a job a
 * worker holds right now (`conflict`), and records a tracking event for hold, release and delete.
 */
import type { Job } from 'bullmq';
import {
  HOLD_MS,
  type HoldInfo,
  loadJob,
  QueueOpError,
  type QueueState,
  type StoredJob,
} from './queue-jobs.js';
import type { Spool } from './spool.js';
import type { DeliveryJob } from './types.js';

export const QUEUE_ACTIONS = ['retry', 'hold', 'release', 'delete'] as const;
export type QueueAction = (typeof QUEUE_ACTIONS)[number];

/**
 * Sends a DSN (a bounce) for a job's pending recipients before the job is deleted; the body is
 * still readable while it runs. The delivery package provides it.
 */
export type BounceHook = (job: DeliveryJob, reason: string) => Promise<void>;

export interface ActionOptions {
  /** Who asked (an admin token's name), written into the tracking event and hold info. */
  readonly by?: string;
  /** For delete: send a DSN to the sender first. */
  readonly dsn?: boolean;
  readonly bounce?: BounceHook | undefined;
}

export interface ActionResult {
  readonly routeId: string;
  readonly jobId: string;
  readonly messageId: string;
  readonly action: QueueAction;
  /** `done`: the job changed; `unchanged`: nothing to do (e.g. retry of a waiting job). */
  readonly outcome: 'done' | 'unchanged';
  /** The job's state afterwards; `done` when it is gone (deleted). */
  readonly state: QueueState | 'done';
  /** For delete with dsn: whether the DSN was sent. */
  readonly dsn?: 'sent' | 'failed';
}

/** Act on one job. Throws QueueOpError (not-found, conflict, unsupported). */
export async function actOnJob(
  spool: Spool,
  routeId: string,
  jobId: string,
  action: QueueAction,
  options: ActionOptions = {},
): Promise<ActionResult> {
  if (action === 'delete' && options.dsn && !options.bounce) {
    throw new QueueOpError(
      'unsupported',
      'deleting with a DSN is not available: no bounce sender is configured',
    );
  }
  const found = await loadJob(spool, routeId, jobId);
  if (!found) throw new QueueOpError('not-found', `no queued job ${jobId} on route ${routeId}`);
  const { job, state, due } = found;
  const result = (outcome: 'done' | 'unchanged', after: QueueState | 'done', extra = {}): ActionResult => ({
    routeId,
    jobId,
    messageId: job.data.messageId,
    action,
    outcome,
    state: after,
    ...extra,
  });
  if (state === 'active') {
    throw new QueueOpError('conflict', `job ${jobId} is being delivered right now; try again in a moment`);
  }
  try {
    switch (action) {
      case 'retry':
        if (state === 'deferred') {
          await job.promote();
          return result('done', 'waiting');
        }
        if (state === 'failed') {
          await job.retry('failed');
          return result('done', 'waiting');
        }
        if (state === 'held') throw new QueueOpError('conflict', `job ${jobId} is held: release it instead`);
        return result('unchanged', state);

      case 'hold': {
        if (state === 'held') return result('unchanged', state);
        const held: HoldInfo = {
          at: Date.now(),
          ...(options.by ? { by: options.by } : {}),
          ...(state === 'deferred' && due !== null ? { until: due } : {}),
        };
        await park(spool, routeId, job, state, held);
        await track(spool, job, 'held', routeId, options.by);
        return result('done', 'held');
      }

      case 'release': {
        if (state !== 'held') return result('unchanged', state);
        const { held, ...data } = job.data as StoredJob;
        await job.updateData(data);
        const wait = (held?.until ?? 0) - Date.now();
        if (wait > 0) await job.changeDelay(wait);
        else await job.promote();
        await track(spool, job, 'released', routeId, options.by);
        return result('done', wait > 0 ? 'deferred' : 'waiting');
      }

      case 'delete': {
        await job.remove();
        let dsn: 'sent' | 'failed' | undefined;
        if (options.dsn && options.bounce) {
          dsn = await options.bounce(job.data, 'deleted by an operator').then(
            () => 'sent' as const,
            () => 'failed' as const,
          );
        }
        await spool.release(job.data.messageId, jobId);
        await track(spool, job, 'deleted', routeId, options.by);
        return result('done', 'done', dsn ? { dsn } : {});
      }
    }
  } catch (err) {
    if (err instanceof QueueOpError) throw err;
    // BullMQ refuses when the job moved meanwhile (a worker took it, it fell due).
    throw new QueueOpError('conflict', `job ${jobId} changed while acting on it: ${(err as Error).message}`);
  }
}

/** Act on every job of a message (or its job on one route). */
export async function actOnMessage(
  spool: Spool,
  messageId: string,
  action: QueueAction,
  options: ActionOptions & { readonly routeId?: string | undefined } = {},
): Promise<ActionResult[]> {
  const meta = await spool.readMeta(messageId);
  if (meta === null) throw new QueueOpError('not-found', `no queued message ${messageId}`);
  const routes = meta.routes.filter((r) => options.routeId === undefined || r.routeId === options.routeId);
  if (routes.length === 0) {
    throw new QueueOpError('not-found', `message ${messageId} has no job on route ${options.routeId}`);
  }
  const results: ActionResult[] = [];
  for (const r of routes) {
    if ((await loadJob(spool, r.routeId, r.jobId)) === null) continue; // finished on that route
    results.push(await actOnJob(spool, r.routeId, r.jobId, action, options));
  }
  if (results.length === 0)
    throw new QueueOpError('not-found', `message ${messageId} has no queued job left`);
  return results;
}

/**
 * Move a job to the held place: a deferred job gets a new due time HOLD_MS ahead; a waiting or
 * failed one (BullMQ cannot delay those in place) is removed and added again under the same id.
 */
async function park(spool: Spool, routeId: string, job: Job<DeliveryJob>, state: QueueState, held: HoldInfo) {
  const data: StoredJob = { ...job.data, held };
  if (state === 'deferred') {
    await job.changeDelay(HOLD_MS);
    await job.updateData(data);
    return;
  }
  await job.remove();
  const { delay: _delay, jobId: _jobId, ...opts } = job.opts;
  await spool
    .queueOfJob(routeId, String(job.id))
    .add(job.name, data, { ...opts, jobId: String(job.id), delay: HOLD_MS });
}

async function track(
  spool: Spool,
  job: Job<DeliveryJob>,
  type: 'held' | 'released' | 'deleted',
  routeId: string,
  by: string | undefined,
) {
  await spool.track({
    type,
    messageId: job.data.messageId,
    routeId,
    sender: job.data.sender,
    recipients: job.data.recipients,
    ...(by ? { reply: `${type} by ${by}` } : {}),
  });
}
