/** One message as an operator sees it: envelope, client, headers, and each route's job. */
import { describeJob, loadJob, type QueuedJob } from './queue-jobs.js';
import type { Spool } from './spool.js';
import { searchMessageEvents } from './tracking.js';
import type { MessageMeta, TrackingEvent } from './types.js';

/** Bytes read from the start of the body to find its header. */
export const HEADER_BYTES = 64 * 1024;
const MAX_HEADERS = 200;

export interface MessageHeader {
  readonly name: string;
  readonly value: string;
}

/** A route's job of the message; `done` when it has finished (delivered, bounced or deleted). */
export type MessageJob =
  | QueuedJob
  | { readonly routeId: string; readonly jobId: string; readonly state: 'done' };

export interface MessageDetails {
  readonly meta: MessageMeta;
  readonly headers: MessageHeader[];
  readonly jobs: MessageJob[];
  /** The message's tracking events, newest first. */
  readonly events: TrackingEvent[];
}

/** The message, or null when Moat no longer has it. */
export async function messageDetails(spool: Spool, messageId: string): Promise<MessageDetails | null> {
  const meta = await spool.readMeta(messageId);
  if (meta === null) return null;
  const [head, jobs, events] = await Promise.all([
    spool.redis.getrangeBuffer(spool.keysOf(messageId).body(messageId), 0, HEADER_BYTES - 1),
    Promise.all(
      meta.routes.map(async (r): Promise<MessageJob> => {
        const found = await loadJob(spool, r.routeId, r.jobId);
        return found
          ? describeJob(r.routeId, found.job, found.state, found.due)
          : { routeId: r.routeId, jobId: r.jobId, state: 'done' };
      }),
    ),
    searchMessageEvents(spool, { messageId, limit: 100 }),
  ]);
  return { meta, headers: parseHeaders(head.toString('utf8')), jobs, events };
}

/** The header fields at the start of a message (unfolded), up to the blank line. */
export function parseHeaders(text: string): MessageHeader[] {
  const end = text.search(/\r?\n\r?\n/);
  const block = end === -1 ? text : text.slice(0, end);
  const headers: MessageHeader[] = [];
  for (const line of block.split(/\r?\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    headers.push({
      name: line.slice(0, colon).trim(),
      value: line
        .slice(colon + 1)
        .replace(/\r?\n[ \t]+/g, ' ')
        .trim(),
    });
    if (headers.length >= MAX_HEADERS) break;
  }
  return headers;
}
