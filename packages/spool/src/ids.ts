import { randomBytes } from 'node:crypto';

/**
 * A message id (queue id): sortable by time, unique across nodes without coordination,
 * safe in Redis keys, BullMQ job ids, SMTP replies and file names. 10 time chars + 10 random.
 */
export function newMessageId(now = Date.now()): string {
  return `${now.toString(36).toUpperCase().padStart(10, '0')}${randomBytes(5).toString('hex').toUpperCase()}`;
}

/** The time encoded in a message id (ms), or NaN. */
export function messageIdTime(id: string): number {
  return Number.parseInt(id.slice(0, 10), 36);
}
