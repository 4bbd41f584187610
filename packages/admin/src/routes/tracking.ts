/**
 * GET /tracking: message tracking, as Exchange's tracking log: events (received, deferred with
 * the remote reply, delivered with the remote 250 and host, bounced, held, deleted, …) by
 * message id, sender, recipient (or "@domain"), either address, and time range; newest first.
 */
import { searchMessageEvents, type TrackingEvent } from '@moat/spool';
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { errorSchema, HttpError } from '../errors.js';
import { messageIdSchema, trackingEventSchema } from '../schemas.js';

interface TrackingQuery {
  messageId?: string;
  sender?: string;
  recipient?: string;
  address?: string;
  since?: string;
  until?: string;
  limit: number;
}

const timeSchema = {
  type: 'string',
  maxLength: 40,
  description: 'ISO 8601 time (2026-11-28T15:00:00Z) or milliseconds since 1970',
} as const;

export function registerTrackingRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{ Querystring: TrackingQuery }>(
    '/tracking',
    {
      schema: {
        tags: ['tracking'],
        summary: 'Search tracking events, newest first',
        querystring: {
          type: 'object',
          properties: {
            messageId: messageIdSchema,
            sender: { type: 'string', maxLength: 512 },
            recipient: { type: 'string', maxLength: 512, description: 'An address, or "@domain"' },
            address: { type: 'string', maxLength: 512, description: 'Sender or recipient' },
            since: timeSchema,
            until: timeSchema,
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: { events: { type: 'array', items: trackingEventSchema } },
            required: ['events'],
          },
          400: errorSchema,
          503: errorSchema,
        },
      },
    },
    async (request) => {
      const q = request.query;
      const base = {
        ...(q.messageId ? { messageId: q.messageId } : {}),
        ...(q.sender !== undefined ? { sender: q.sender } : {}),
        ...(q.recipient ? { recipient: q.recipient } : {}),
        ...(q.since !== undefined ? { since: time('since', q.since) } : {}),
        ...(q.until !== undefined ? { until: time('until', q.until) } : {}),
        limit: q.limit,
      };
      const search = (extra: object) => searchMessageEvents(deps.spool, { ...base, ...extra });
      if (q.address === undefined) return { events: await search({}) };
      const [asSender, asRecipient] = await Promise.all([
        search({ sender: q.address }),
        search({ recipient: q.address }),
      ]);
      return { events: merge(asSender, asRecipient, q.limit) };
    },
  );
}

function time(name: string, text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(value)) {
    throw new HttpError(400, `querystring/${name} must be an ISO 8601 time or milliseconds, got "${text}"`);
  }
  return value;
}

/** Two newest-first lists as one, without the events both found. */
function merge(a: TrackingEvent[], b: TrackingEvent[], limit: number): TrackingEvent[] {
  const seen = new Set<string>();
  return [...a, ...b]
    .sort((x, y) => (y.time ?? 0) - (x.time ?? 0))
    .filter((e) => {
      const key = JSON.stringify(e);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, limit);
}
