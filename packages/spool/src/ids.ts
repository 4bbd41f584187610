import { randomFillSync } from 'node:crypto';

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
 * safe in Redis keys, BullMQ job ids, SMTP replies and file names. 10 time chars + 10 random.
 */
export function newMessageId(now = Date.now()): string {
  return `${now.toString(36).toUpperCase().padStart(10, '0')}${random5().toUpperCase()}`;
}

/** The time encoded in a message id (ms), or NaN. */
export function messageIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 10), 36);
}
