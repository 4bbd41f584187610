/** Probes for load balancers and Kubernetes: no token, nothing secret in the answers. */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { int, str } from '../schemas.js';

export const READY_TIMEOUT_MS = 2000;

export function registerHealthRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/health',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['probes'],
        summary: 'The process is up',
        security: [],
        response: {
          200: {
            type: 'object',
            properties: {
              status: { type: 'string', enum: ['ok'] },
              node: str,
              version: str,
              nodeVersion: str,
              uptimeSeconds: int,
            },
            required: ['status', 'node', 'version', 'nodeVersion', 'uptimeSeconds'],
          },
        },
      },
    },
    async () => ({
      status: 'ok',
      node: deps.nodeId,
      version: deps.version,
      nodeVersion: process.version,
      uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
    }),
  );

  app.get(
    '/ready',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['probes'],
        summary: "Redis is reachable and this node's roles are running",
        security: [],
        response: {
          '2xx': readySchema,
          503: readySchema,
        },
      },
    },
    async (_request, reply) => {
      const redis = await withTimeout(deps.spool.redis.ping(), READY_TIMEOUT_MS).then(
        () => true,
        () => false,
      );
      const roles = await withTimeout(deps.ready(), READY_TIMEOUT_MS).catch(() => ({ roles: false }));
      const checks = { redis, ...roles };
      const ready = Object.values(checks).every(Boolean);
      const warnings = deps.warnings();
      return reply
        .code(ready ? 200 : 503)
        .send({ status: ready ? 'ready' : 'unready', checks, ...(warnings.length > 0 ? { warnings } : {}) });
    },
  );
}

const readySchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'unready'] },
    checks: { type: 'object', additionalProperties: { type: 'boolean' } },
    warnings: { type: 'array', items: { type: 'string' } },
  },
  required: ['status', 'checks'],
} as const;

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
