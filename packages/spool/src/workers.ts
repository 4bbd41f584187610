/**
 * The consumer side: a BullMQ worker per route queue, with the settings mail needs
 * (stalled jobs always come back: a worker killed mid-delivery must never lose a message),
 * and `defer`, which puts a job back for a later attempt without BullMQ's own retry count.
 */
import { DelayedError, type Job, Worker } from 'bullmq';
import type { RedisClient } from './connection.js';
import type { PartitionKeys } from './keys.js';
import type { DeliveryJob } from './types.js';

export type DeliveryJobHandle = Job<DeliveryJob>;

export interface RouteWorkerOptions {
  /** A worker connection (maxRetriesPerRequest: null); BullMQ duplicates it for blocking calls. */
  readonly connection: RedisClient;
  readonly concurrency: number;
  /** How long a job stays locked to a worker without renewal (a killed worker's job returns after this). */
  readonly lockDuration?: number;
  readonly stalledInterval?: number;
  readonly name?: string;
}

/** A job is retried after stalling this many times before BullMQ would fail it; effectively never. */
const MAX_STALLED = 1_000_000;

/** A worker for a route's queue in one partition (`keys`: that partition's). */
export function startRouteWorker(
  keys: PartitionKeys,
  routeId: string,
  processor: (job: DeliveryJobHandle, token: string | undefined) => Promise<void>,
  options: RouteWorkerOptions,
): Worker<DeliveryJob> {
  const worker = new Worker<DeliveryJob>(keys.queueName(routeId), processor, {
    connection: options.connection,
    prefix: keys.root,
    concurrency: options.concurrency,
    lockDuration: options.lockDuration ?? 30_000,
    stalledInterval: options.stalledInterval ?? 30_000,
    maxStalledCount: MAX_STALLED,
    ...(options.name ? { name: options.name } : {}),
    removeOnComplete: { count: 0 },
    removeOnFail: { count: 10_000 },
  });
  return worker;
}

/**
 * Put a job back with new data (the still-pending recipients, attempts, last reply) to run
 * again after `delayMs`. Call from the processor; it throws BullMQ's DelayedError, which the
 * processor must let through.
 */
export async function deferJob(
  job: DeliveryJobHandle,
  token: string | undefined,
  delayMs: number,
  data: DeliveryJob,
): Promise<never> {
  await job.updateData(data);
  await job.moveToDelayed(Date.now() + delayMs, token);
  throw new DelayedError();
}
