/**
 * The queue, one message at a time: list by route and state, show one message, retry now,
 * hold, release, delete (optionally with a DSN to the sender).
 */
import {
  actOnMessage,
  listJobs,
  MAX_PAGE,
  messageDetails,
  oldestJobs,
  type QueueAction,
  type QueueState,
} from '@moat/spool';
import type { FastifyInstance } from 'fastify';
import { type AdminDeps, configuredRoutes } from '../deps.js';
import { errorSchema, HttpError } from '../errors.js';
import {
  actionResultSchema,
  bool,
  int,
  messageIdSchema,
  nullable,
  queuedJobSchema,
  routeIdSchema,
  stateSchema,
  str,
  strings,
  trackingEventSchema,
} from '../schemas.js';

const errors = { 400: errorSchema, 404: errorSchema, 409: errorSchema, 503: errorSchema };

const messageJobSchema = {
  ...queuedJobSchema,
  properties: {
    ...queuedJobSchema.properties,
    state: { type: 'string', enum: [...stateSchema.enum, 'done'] },
  },
  required: ['routeId', 'jobId', 'state'],
} as const;

const resultsSchema = {
  type: 'object',
  properties: { results: { type: 'array', items: actionResultSchema } },
  required: ['results'],
} as const;

const messageParams = {
  type: 'object',
  properties: { id: messageIdSchema },
  required: ['id'],
  additionalProperties: false,
} as const;

export function registerQueueRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.get<{
    Querystring: {
      route?: string;
      state: QueueState;
      offset: number;
      limit: number;
      order: 'queue' | 'oldest';
    };
  }>(
    '/queue',
    {
      schema: {
        tags: ['queue'],
        summary: 'Jobs (a message on one route) in one state, a page at a time',
        description:
          'order=queue: waiting and active oldest first, deferred by next attempt, held by hold time, failed newest first. order=oldest: by the age of the message (offset is ignored).',
        querystring: {
          type: 'object',
          properties: {
            route: routeIdSchema,
            state: { ...stateSchema, default: 'deferred' },
            offset: { type: 'integer', minimum: 0, maximum: 100_000, default: 0 },
            limit: { type: 'integer', minimum: 1, maximum: MAX_PAGE, default: 50 },
            order: { type: 'string', enum: ['queue', 'oldest'], default: 'queue' },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              total: int,
              offset: int,
              limit: int,
              jobs: { type: 'array', items: queuedJobSchema },
            },
            required: ['total', 'offset', 'limit', 'jobs'],
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { route, state, offset, limit, order } = request.query;
      const routes = configuredRoutes(deps);
      if (order === 'oldest') {
        const [count, jobs] = await Promise.all([
          listJobs(deps.spool, { routeId: route, state, limit: 1 }, routes),
          oldestJobs(deps.spool, { routeId: route, state, limit }),
        ]);
        return { total: count.total, offset: 0, limit, jobs };
      }
      const page = await listJobs(deps.spool, { routeId: route, state, offset, limit }, routes);
      return { total: page.total, offset, limit, jobs: page.jobs };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/queue/:id',
    {
      schema: {
        tags: ['queue'],
        summary: "One message: envelope, client, headers, each route's job, tracking events",
        params: messageParams,
        response: {
          200: {
            type: 'object',
            properties: {
              id: str,
              sender: str,
              size: int,
              receivedAt: int,
              kind: str,
              client: {
                type: 'object',
                properties: { ip: str, helo: str, user: nullable('string'), tls: bool },
                required: ['ip', 'helo', 'user', 'tls'],
              },
              recipients: strings,
              headers: {
                type: 'array',
                items: { type: 'object', properties: { name: str, value: str }, required: ['name', 'value'] },
              },
              jobs: { type: 'array', items: messageJobSchema },
              events: { type: 'array', items: trackingEventSchema },
            },
            required: [
              'id',
              'sender',
              'size',
              'receivedAt',
              'kind',
              'client',
              'recipients',
              'headers',
              'jobs',
              'events',
            ],
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const details = await messageDetails(deps.spool, request.params.id);
      if (details === null) throw new HttpError(404, `no queued message ${request.params.id}`);
      const { meta } = details;
      return {
        id: meta.id,
        sender: meta.sender,
        size: meta.size,
        receivedAt: meta.receivedAt,
        kind: meta.kind,
        client: meta.client,
        recipients: meta.routes.flatMap((r) => r.recipients),
        headers: details.headers,
        jobs: details.jobs,
        events: details.events,
      };
    },
  );

  for (const action of ['retry', 'hold', 'release'] as const) {
    app.post<{ Params: { id: string }; Body: { route?: string } | undefined }>(
      `/queue/:id/${action}`,
      {
        schema: {
          tags: ['queue'],
          summary: SUMMARIES[action],
          params: messageParams,
          body: {
            type: 'object',
            properties: { route: { ...routeIdSchema, description: "Only the message's job on this route" } },
            additionalProperties: false,
          },
          response: { 200: resultsSchema, ...errors },
        },
        // The body is optional: none at all means {}.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request) => act(deps, request.params.id, action, request.body?.route, request.principal?.name),
    );
  }

  app.delete<{ Params: { id: string }; Querystring: { route?: string; dsn: boolean } }>(
    '/queue/:id',
    {
      schema: {
        tags: ['queue'],
        summary: SUMMARIES.delete,
        params: messageParams,
        querystring: {
          type: 'object',
          properties: {
            route: routeIdSchema,
            dsn: { type: 'boolean', default: false, description: 'Send a DSN (bounce) to the sender first' },
          },
          additionalProperties: false,
        },
        response: { 200: resultsSchema, ...errors },
      },
    },
    async (request) =>
      act(deps, request.params.id, 'delete', request.query.route, request.principal?.name, request.query.dsn),
  );
}

const SUMMARIES: Record<QueueAction, string> = {
  retry: 'Retry now: a deferred job is delivered at once, a failed one is tried again',
  hold: 'Hold: workers leave the message alone until it is released',
  release: 'Release a held message (back to its retry time, or at once)',
  delete: 'Delete the message (or its job on one route), optionally with a DSN to the sender',
};

async function act(
  deps: AdminDeps,
  messageId: string,
  action: QueueAction,
  routeId: string | undefined,
  by: string | undefined,
  dsn = false,
) {
  const results = await actOnMessage(deps.spool, messageId, action, {
    routeId,
    ...(by ? { by } : {}),
    dsn,
    bounce: deps.bounce,
  });
  return { results };
}
