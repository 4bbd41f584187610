/**
 * Orphans: a body whose jobs never got written (a crash between the two writes of enqueue),
 * or whose jobs are all gone without releasing it. After a grace period, a message none of
 * whose jobs exists in its queue is deleted. Safe to run on every node at once. One partition
 * at a time (a message, its jobs and its queues share the partition's slot).
 */
import type { RedisClient } from './connection.js';
import type { PartitionKeys } from './keys.js';
import type { MessageMeta } from './types.js';

export interface SweepResult {
  readonly checked: number;
  readonly deleted: string[];
}

export async function sweepOrphans(
  redis: RedisClient,
  keys: PartitionKeys,
  graceMs: number,
  now = Date.now(),
  batch = 500,
): Promise<SweepResult> {
  const ids = await redis.zrangebyscore(keys.messages, '-inf', String(now - graceMs), 'LIMIT', 0, batch);
  const deleted: string[] = [];
  for (const id of ids) {
    const json = await redis.hget(keys.meta(id), 'json');
    const meta = json ? (JSON.parse(json) as MessageMeta) : null;
    const pending = await redis.smembers(keys.jobs(id));
    let alive = false;
    for (const jobId of pending) {
      const route = meta?.routes.find((r) => r.jobId === jobId);
      if (route && (await redis.exists(keys.job(keys.queueName(route.routeId), jobId))) === 1) {
        alive = true;
        break;
      }
    }
    if (!alive) {
      await redis.multi().del(keys.body(id), keys.meta(id), keys.jobs(id)).zrem(keys.messages, id).exec();
      deleted.push(id);
    }
  }
  return { checked: ids.length, deleted };
}
