import { randomFillSync } from 'node:crypto';
import { MAX_PARTITIONS } from './keys.js';

// Random bytes are drawn in blocks: one randomFillSync per message costs more than the rest of the id.
const POOL = Buffer.alloc(4096);
let offset = POOL.length;

function random5(): string {
  if (offset + 5 > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const hex = POOL.toString('hex', offset, offset + 5);
  offset += 5;
  return hex;
}

/**
 * A message id (queue id): sortable by time, unique across nodes without coordination,
 * safe in Redis keys, BullMQ job ids, SMTP replies and file names. 10 time chars + 10 random,
 * then, for a message in partition i ≥ 1, "p" and i: the id says where the message lives,
 * whatever `redis.partitions` is later set to.
 */
export function newMessageId(now = Date.now(), partition = 0): string {
  const id = `${now.toString(36).toUpperCase().padStart(10, '0')}${random5().toUpperCase()}`;
  return partition === 0 ? id : `${id}p${partition}`;
}

/** The partition a message id names (0 for an id without one, or with one past MAX_PARTITIONS). */
export function partitionOfId(id: string): number {
  const p = id.lastIndexOf('p');
  if (p < 0) return 0;
  const n = Number(id.slice(p + 1));
  return Number.isSafeInteger(n) && n > 0 && n <= MAX_PARTITIONS ? n : 0;
}

/** The time encoded in a message id (ms), or NaN. */
export function messageIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 10), 36);
}
