/**
 * The operator's view of a delivery job: which state it is in (waiting, active, deferred,
 * held, failed), what it carries, and when it runs next.
 *
 * Held mail: a held job stays in its BullMQ queue (so the orphan sweeper and every count still
 * see it) but is moved to the delayed set with a due time HOLD_MS ahead, far past any retry
 * delay, and carries `held` in its data. Workers only take delayed jobs when they fall due, so
 * they never see it; `release` puts it back. A job is held when its due time is past
 * HELD_AFTER_MS from now: the placement, not the flag, is what keeps workers away.
 */
import type { Job } from 'bullmq';
import { partitionOfId } from './ids.js';
import { DELAYED_SCORE_SCALE } from './keys.js';
import { messageIdOfJob, type Spool } from './spool.js';
import type { DeliveryJob } from './types.js';

export const QUEUE_STATES = ['waiting', 'active', 'deferred', 'held', 'failed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

/** How far ahead a held job is parked (5 years: within BullMQ's exact score range until 2034). */
export const HOLD_MS = 5 * 365 * 86_400_000;
/** Delayed jobs due later than this from now are held ones (no retry schedule waits a year). */
export const HELD_AFTER_MS = 365 * 86_400_000;

/** What `hold` writes into the job's data. */
export interface HoldInfo {
  readonly at: number;
  readonly by?: string;
  /** The job's due time when it was held (a deferred job); release restores it if still ahead. */
  readonly until?: number;
}

export type StoredJob = DeliveryJob & { readonly held?: HoldInfo };

export interface QueuedJob {
  readonly routeId: string;
  readonly jobId: string;
  readonly messageId: string;
  readonly state: QueueState;
  readonly kind: 'message' | 'dsn';
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly queuedAt: number;
  readonly attempts: number;
  /** Due time of a deferred job (ms), else null. */
  readonly nextAttemptAt: number | null;
  readonly lastReply: { readonly code: number; readonly text: string; readonly host: string | null } | null;
  readonly heldAt: number | null;
  readonly heldBy: string | null;
  readonly failedReason: string | null;
}

/** Why a queue operation could not be done: `not-found` (no such message or job) or `conflict`. */
export class QueueOpError extends Error {
  override readonly name = 'QueueOpError';
  constructor(
    readonly code: 'not-found' | 'conflict' | 'unsupported',
    message: string,
  ) {
    super(message);
  }
}

/** Whether a job's data marks it as held (for workers that want to double-check). */
export function isHeld(data: DeliveryJob): boolean {
  return (data as StoredJob).held !== undefined;
}

/** The lowest delayed-set score of a held job, as of `now`. */
export function heldScoreFloor(now = Date.now()): number {
  return (now + HELD_AFTER_MS) * DELAYED_SCORE_SCALE;
}

/** Due times (ms) of delayed jobs of one partition, null for jobs not in the delayed set. */
export async function dueTimes(
  spool: Spool,
  routeId: string,
  partition: number,
  jobIds: readonly string[],
): Promise<(number | null)[]> {
  if (jobIds.length === 0) return [];
  const key = spool.partitionKeys(partition).delayed(routeId);
  const scores = (await spool.redis.call('ZMSCORE', key, ...jobIds)) as (string | null)[];
  return scores.map((s) => (s === null ? null : Math.floor(Number(s) / DELAYED_SCORE_SCALE)));
}

/** The state of a job from BullMQ's state and its due time; null when it is finished or gone. */
export function stateFrom(bullState: string, due: number | null, now = Date.now()): QueueState | null {
  switch (bullState) {
    case 'waiting':
    case 'prioritized':
    case 'waiting-children':
      return 'waiting';
    case 'active':
      return 'active';
    case 'delayed':
      return due !== null && due > now + HELD_AFTER_MS ? 'held' : 'deferred';
    case 'failed':
      return 'failed';
    default:
      return null;
  }
}

/** One job with its current state, or null when it is finished or gone. */
export async function loadJob(
  spool: Spool,
  routeId: string,
  jobId: string,
): Promise<{ job: Job<DeliveryJob>; state: QueueState; due: number | null } | null> {
  const partition = partitionOfId(messageIdOfJob(jobId));
  const job = await spool.queue(routeId, partition).getJob(jobId);
  if (!job) return null;
  const [bullState, [due = null]] = await Promise.all([
    job.getState(),
    dueTimes(spool, routeId, partition, [jobId]),
  ]);
  const state = stateFrom(bullState, due);
  return state === null ? null : { job, state, due };
}

export function describeJob(
  routeId: string,
  job: Job<DeliveryJob>,
  state: QueueState,
  due: number | null,
): QueuedJob {
  const data = job.data as StoredJob;
  const reply = data.lastReply;
  return {
    routeId,
    jobId: String(job.id),
    messageId: data.messageId,
    state,
    kind: data.kind,
    sender: data.sender,
    recipients: [...data.recipients],
    queuedAt: data.queuedAt,
    attempts: data.attempts,
    nextAttemptAt: state === 'deferred' ? due : null,
    lastReply: reply ? { code: reply.code, text: reply.text, host: reply.host ?? null } : null,
    heldAt: state === 'held' ? (data.held?.at ?? null) : null,
    heldBy: state === 'held' ? (data.held?.by ?? null) : null,
    failedReason: state === 'failed' ? job.failedReason || null : null,
  };
}
