/**
 * The recipient validation cache (what every edge learned from LDAP and callouts): list it and
 * flush it for one address, a domain, or all, e.g. after a mailbox is created in Exchange that
 * the cache still calls unknown.
 */
import { RecipientCache } from '@moat/spool';
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { errorSchema } from '../errors.js';
import { int, str } from '../schemas.js';

const querySchema = {
  type: 'object',
  properties: {
    address: { type: 'string', maxLength: 512, description: 'One address' },
    domain: { type: 'string', maxLength: 255, description: 'Every cached address of a domain' },
  },
  additionalProperties: false,
} as const;

const entrySchema = {
  type: 'object',
  properties: {
    address: str,
    verdict: { type: 'string', enum: ['known', 'unknown'] },
    ttlSeconds: int,
  },
  required: ['address', 'verdict', 'ttlSeconds'],
} as const;

type Query = { address?: string; domain?: string };
const what = (q: Query) => q.address ?? q.domain ?? null;

export function registerRecipientRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const cache = new RecipientCache(deps.spool.redis, deps.spool.keys);
  app.get<{ Querystring: Query }>(
    '/recipients/cache',
    {
      schema: {
        tags: ['recipients'],
        summary: 'Cached recipient verdicts (known, unknown) with the time they have left; at most 1,000',
        querystring: querySchema,
        response: {
          200: {
            type: 'object',
            properties: { entries: { type: 'array', items: entrySchema } },
            required: ['entries'],
          },
          503: errorSchema,
        },
      },
    },
    async (request) => ({
      entries: (await cache.list(what(request.query))).map((e) => ({
        address: e.address,
        verdict: e.verdict,
        ttlSeconds: Math.max(0, Math.round(e.ttlMs / 1000)),
      })),
    }),
  );
  app.delete<{ Querystring: Query }>(
    '/recipients/cache',
    {
      schema: {
        tags: ['recipients'],
        summary: 'Forget cached verdicts of one address, a domain, or (with neither) all',
        querystring: querySchema,
        response: {
          200: { type: 'object', properties: { flushed: int }, required: ['flushed'] },
          503: errorSchema,
        },
      },
    },
    async (request) => ({ flushed: await cache.flush(what(request.query)) }),
  );
}
