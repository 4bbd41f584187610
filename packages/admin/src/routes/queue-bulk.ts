/** POST /queue/bulk: one action on every job matching a filter, with a dry run to look first. */
import { parseDuration } from '@moat/policy';
import { bulkAction, type JobFilter, MAX_BULK, type QueueAction, type QueueState } from '@moat/spool';
import type { FastifyInstance } from 'fastify';
import { type AdminDeps, configuredRoutes } from '../deps.js';
import { errorSchema, HttpError } from '../errors.js';
import { actionResultSchema, actionSchema, int, routeIdSchema, stateSchema, str } from '../schemas.js';

interface BulkBody {
  action: QueueAction;
  filter: {
    route?: string;
    states?: QueueState[];
    sender?: string;
    recipientDomain?: string;
    olderThan?: string | number;
  };
  all?: boolean;
  dryRun?: boolean;
  dsn?: boolean;
  max?: number;
}

export function registerBulkRoutes(app: FastifyInstance, deps: AdminDeps): void {
  app.post<{ Body: BulkBody }>(
    '/queue/bulk',
    {
      schema: {
        tags: ['queue'],
        summary: 'Retry, hold, release or delete every job matching a filter',
        description:
          'At least one filter field is needed unless all=true. Active jobs are never touched. dryRun lists the matches without acting.',
        body: {
          type: 'object',
          properties: {
            action: actionSchema,
            filter: {
              type: 'object',
              properties: {
                route: routeIdSchema,
                states: { type: 'array', items: stateSchema, minItems: 1, uniqueItems: true },
                sender: { type: 'string', maxLength: 512, description: 'Exact envelope sender; "" is <>' },
                recipientDomain: { type: 'string', minLength: 1, maxLength: 255 },
                olderThan: {
                  type: ['string', 'integer'],
                  description: 'Queued at least this long ago: ms, or a duration such as 4h',
                },
              },
              additionalProperties: false,
            },
            all: { type: 'boolean', default: false, description: 'Allow an empty filter (every queued job)' },
            dryRun: { type: 'boolean', default: false },
            dsn: { type: 'boolean', default: false, description: 'With delete: send DSNs to the senders' },
            max: { type: 'integer', minimum: 1, maximum: MAX_BULK, default: MAX_BULK },
          },
          required: ['action', 'filter'],
          additionalProperties: false,
        },
        response: {
          200: {
            type: 'object',
            properties: {
              matched: int,
              dryRun: { type: 'boolean' },
              results: { type: 'array', items: actionResultSchema },
              errors: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: { routeId: str, jobId: str, error: str },
                  required: ['routeId', 'jobId', 'error'],
                },
              },
            },
            required: ['matched', 'dryRun', 'results', 'errors'],
          },
          400: errorSchema,
          503: errorSchema,
        },
      },
    },
    async (request) => {
      const body = request.body;
      const f = body.filter;
      const filter: JobFilter = {
        routeId: f.route,
        states: f.states,
        sender: f.sender,
        recipientDomain: f.recipientDomain,
        olderThan: f.olderThan === undefined ? undefined : olderThan(f.olderThan),
      };
      const narrowed = [f.route, f.sender, f.recipientDomain, f.olderThan, f.states].some(
        (v) => v !== undefined,
      );
      if (!narrowed && !body.all) {
        throw new HttpError(
          400,
          'body/filter is empty: name route, states, sender, recipientDomain or olderThan, or set all: true',
        );
      }
      if (body.action === 'delete' && body.dsn && !deps.bounce) {
        throw new HttpError(400, 'deleting with a DSN is not available: no bounce sender is configured');
      }
      const result = await bulkAction(deps.spool, filter, body.action, {
        dryRun: body.dryRun === true,
        dsn: body.dsn === true,
        bounce: deps.bounce,
        max: body.max ?? MAX_BULK,
        routes: configuredRoutes(deps),
        ...(request.principal ? { by: request.principal.name } : {}),
      });
      return { ...result, dryRun: body.dryRun === true };
    },
  );
}

function olderThan(value: string | number): number {
  if (typeof value === 'number') return value;
  const parsed = parseDuration(value);
  if (!parsed.ok) throw new HttpError(400, `body/filter/olderThan ${parsed.error}`);
  return parsed.value;
}
