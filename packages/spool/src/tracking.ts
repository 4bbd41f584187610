/**
 * Tracking events in capped Redis streams, one per partition (a message's events are in its
 * partition's stream, so its write script stays in one slot): write one, read them back
 * filtered, merged across partitions.
 */
import type { RedisClient } from './connection.js';
import type { Spool } from './spool.js';
import type { FilterVerdictRecord, TrackingEvent } from './types.js';

export const DEFAULT_MAX_EVENTS = 100_000;

/** The stream entry's field/value list for an event. */
export function eventFields(event: TrackingEvent): string[] {
  const fields: string[] = [
    'type',
    event.type,
    'msg',
    event.messageId,
    'time',
    String(event.time ?? Date.now()),
  ];
  for (const name of ['routeId', 'sender', 'host', 'reply', 'node', 'client'] as const) {
    const value = event[name];
    if (value !== undefined) fields.push(name, value);
  }
  if (event.recipients) fields.push('rcpt', event.recipients.join(','));
  if (event.size !== undefined) fields.push('size', String(event.size));
  if (event.filters !== undefined && event.filters.length > 0)
    fields.push('filters', JSON.stringify(event.filters));
  return fields;
}

export interface EventQuery {
  readonly messageId?: string;
  readonly sender?: string;
  /** Matches a recipient address exactly, or its domain when it starts with "@". */
  readonly recipient?: string;
  readonly since?: number;
  readonly until?: number;
  readonly limit?: number;
}

/** One stream's events, newest first. Scans at most `scan` events back (the stream is capped anyway). */
export async function searchEvents(
  redis: RedisClient,
  key: string,
  query: EventQuery,
  scan = 10_000,
): Promise<TrackingEvent[]> {
  const end = query.until !== undefined ? String(query.until) : '+';
  const start = query.since !== undefined ? String(query.since) : '-';
  const entries = await redis.xrevrange(key, end, start, 'COUNT', scan);
  const out: TrackingEvent[] = [];
  const limit = query.limit ?? 100;
  for (const [, fields] of entries) {
    const event = toEvent(fields);
    if (query.messageId && event.messageId !== query.messageId) continue;
    if (query.sender && event.sender?.toLowerCase() !== query.sender.toLowerCase()) continue;
    if (query.recipient && !matchesRecipient(event.recipients ?? [], query.recipient)) continue;
    out.push(event);
    if (out.length >= limit) break;
  }
  return out;
}

/**
 * Events across every partition, newest first: a message's from its own partition's stream,
 * any other query from each stream (at most `scan` events back in all), merged by time.
 */
export async function searchMessageEvents(
  spool: Spool,
  query: EventQuery,
  scan = 10_000,
): Promise<TrackingEvent[]> {
  if (query.messageId) {
    return searchEvents(spool.redis, spool.keysOf(query.messageId).events, query, scan);
  }
  const partitions = await spool.refreshLayout();
  if (partitions.length === 1) return searchEvents(spool.redis, spool.keys.events, query, scan);
  const each = Math.max(1000, Math.ceil(scan / partitions.length));
  const found = await Promise.all(
    partitions.map((p) => searchEvents(spool.redis, spool.partitionKeys(p).events, query, each)),
  );
  return found
    .flat()
    .sort((a, b) => (b.time ?? 0) - (a.time ?? 0))
    .slice(0, query.limit ?? 100);
}

function matchesRecipient(recipients: readonly string[], wanted: string): boolean {
  const w = wanted.toLowerCase();
  return recipients.some((r) => (w.startsWith('@') ? r.toLowerCase().endsWith(w) : r.toLowerCase() === w));
}

function parseFilters(json: string): FilterVerdictRecord[] | undefined {
  try {
    const parsed: unknown = JSON.parse(json);
    return Array.isArray(parsed) ? (parsed as FilterVerdictRecord[]) : undefined;
  } catch {
    return undefined;
  }
}

function toEvent(fields: string[]): TrackingEvent {
  const f = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) f.set(fields[i] as string, fields[i + 1] as string);
  const num = (name: string) => (f.has(name) ? Number(f.get(name)) : undefined);
  const event: Record<string, unknown> = {
    type: f.get('type'),
    messageId: f.get('msg'),
    time: num('time'),
    routeId: f.get('routeId'),
    sender: f.get('sender'),
    recipients: f.get('rcpt')?.split(',').filter(Boolean),
    host: f.get('host'),
    reply: f.get('reply'),
    node: f.get('node'),
    client: f.get('client'),
    size: num('size'),
    filters: f.has('filters') ? parseFilters(f.get('filters') as string) : undefined,
  };
  for (const key of Object.keys(event)) if (event[key] === undefined) delete event[key];
  return event as unknown as TrackingEvent;
}
