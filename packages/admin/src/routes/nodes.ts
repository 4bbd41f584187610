/** GET /nodes: the live edges, workers and admin nodes (heartbeats), their version, uptime, load. */
import { liveNodes } from '@moat/spool';
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { errorSchema } from '../errors.js';
import { nodeSchema } from '../schemas.js';

export function registerNodeRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/nodes',
    {
      schema: {
        tags: ['nodes'],
        summary:
          'Live nodes: roles, version, uptime, and the figures each reports (memory, load, sessions, jobs)',
        response: {
          200: {
            type: 'object',
            properties: { nodes: { type: 'array', items: nodeSchema } },
            required: ['nodes'],
          },
          503: errorSchema,
        },
      },
    },
    async () => {
      const now = Date.now();
      const nodes = await liveNodes(deps.spool.redis, deps.spool.keys);
      return {
        nodes: nodes
          .map((n) => ({
            ...n,
            stats: n.stats ?? {},
            uptimeSeconds: Math.max(0, Math.round(((n.lastSeen ?? now) - n.startedAt) / 1000)),
          }))
          .sort((a, b) => a.id.localeCompare(b.id)),
      };
    },
  );
}
