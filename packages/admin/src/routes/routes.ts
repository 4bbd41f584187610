/**
 * Routes (one queue per destination): list with counts and paused state; pause and resume.
 * The paused flag lives in Redis (BullMQ's queue meta), so it holds for every worker and
 * survives restarts of every node.
 */
import { formatNextHop } from '@moat/policy';
import { pauseRoute, type RouteFigures, resumeRoute, routeFigures } from '@moat/spool';
import type { FastifyInstance } from 'fastify';
import { type AdminDeps, configuredRoutes } from '../deps.js';
import { errorSchema, HttpError } from '../errors.js';
import { bool, countsSchema, nullable, routeIdSchema, str, strings } from '../schemas.js';

const routeSchema = {
  type: 'object',
  properties: {
    routeId: str,
    configured: { ...bool, description: 'Named by the current config (else it only has old mail)' },
    domains: { ...strings, description: 'Inbound domains sent this way; "*" for the outbound route' },
    hosts: { ...strings, description: 'Next hops, in order; empty for MX delivery' },
    paused: bool,
    counts: countsSchema,
    oldestQueuedAt: nullable('integer'),
    oldestAgeSeconds: nullable('integer'),
  },
  required: [
    'routeId',
    'configured',
    'domains',
    'hosts',
    'paused',
    'counts',
    'oldestQueuedAt',
    'oldestAgeSeconds',
  ],
} as const;

export function registerRouteRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get(
    '/routes',
    {
      schema: {
        tags: ['routes'],
        summary: 'Every route with its queue counts and paused state',
        response: {
          200: {
            type: 'object',
            properties: { routes: { type: 'array', items: routeSchema } },
            required: ['routes'],
          },
          503: errorSchema,
        },
      },
    },
    async () => {
      const figures = await routeFigures(deps.spool, configuredRoutes(deps));
      return { routes: figures.map((f) => describe(deps, f)) };
    },
  );

  for (const action of ['pause', 'resume'] as const) {
    app.post<{ Params: { id: string } }>(
      `/routes/:id/${action}`,
      {
        schema: {
          tags: ['routes'],
          summary:
            action === 'pause'
              ? 'Pause a route (maintenance): its mail waits, the edge keeps accepting'
              : 'Resume a paused route: its backlog drains',
          params: {
            type: 'object',
            properties: { id: routeIdSchema },
            required: ['id'],
            additionalProperties: false,
          },
          response: { 200: routeSchema, 404: errorSchema, 503: errorSchema },
        },
      },
      async (request) => {
        const routeId = request.params.id;
        const known = new Set([...configuredRoutes(deps), ...(await deps.spool.knownRoutes())]);
        if (!known.has(routeId)) {
          throw new HttpError(
            404,
            `no route "${routeId}"; GET /routes lists them (ids are URL-encoded in paths)`,
          );
        }
        await (action === 'pause' ? pauseRoute : resumeRoute)(deps.spool, routeId);
        request.log.info(
          { event: `admin.route_${action}d`, route: routeId, by: request.principal?.name },
          `route ${action}d`,
        );
        const [figures] = await routeFigures(deps.spool, [routeId]).then((all) =>
          all.filter((f) => f.routeId === routeId),
        );
        if (!figures) throw new HttpError(404, `no route "${routeId}"`);
        return describe(deps, figures);
      },
    );
  }
}

function describe(deps: AdminDeps, f: RouteFigures, now = Date.now()) {
  const route = deps.policy.routes.get(f.routeId);
  const domains = [
    ...[...deps.policy.exact.values()].filter((d) => d.route.id === f.routeId).map((d) => d.pattern.domain),
    ...deps.policy.wildcards.filter((d) => d.route.id === f.routeId).map((d) => `*.${d.pattern.domain}`),
    ...(deps.policy.outbound.id === f.routeId ? ['*'] : []),
  ];
  return {
    routeId: f.routeId,
    configured: route !== undefined,
    domains,
    hosts: route ? route.hops.map(formatNextHop) : [],
    paused: f.paused,
    counts: f.counts,
    oldestQueuedAt: f.oldestQueuedAt,
    oldestAgeSeconds:
      f.oldestQueuedAt === null ? null : Math.max(0, Math.round((now - f.oldestQueuedAt) / 1000)),
  };
}
