/**
 * JSON schemas shared by the routes: they validate input and list every response field
 * (fastify's serializer drops fields a response schema does not list). @fastify/swagger turns
 * them into the OpenAPI document.
 */
import { QUEUE_ACTIONS, QUEUE_STATES } from '@moat/spool';

export const nullable = (type: string) => ({ type: [type, 'null'] });
export const str = { type: 'string' } as const;
export const int = { type: 'integer' } as const;
export const num = { type: 'number' } as const;
export const bool = { type: 'boolean' } as const;
export const strings = { type: 'array', items: str } as const;

/** A message id as the edge hands it out (`250 … queued as <id>`). */
export const messageIdSchema = { type: 'string', pattern: '^[0-9A-Za-z-]{1,64}$' } as const;
export const routeIdSchema = { type: 'string', minLength: 1, maxLength: 1000 } as const;
export const stateSchema = { type: 'string', enum: [...QUEUE_STATES] } as const;
export const actionSchema = { type: 'string', enum: [...QUEUE_ACTIONS] } as const;

export const replySchema = {
  type: ['object', 'null'],
  properties: { code: int, text: str, host: nullable('string') },
  required: ['code', 'text', 'host'],
} as const;

export const queuedJobSchema = {
  type: 'object',
  properties: {
    routeId: str,
    jobId: str,
    messageId: str,
    state: stateSchema,
    kind: { type: 'string', enum: ['message', 'dsn'] },
    sender: str,
    recipients: strings,
    queuedAt: int,
    attempts: int,
    nextAttemptAt: nullable('integer'),
    lastReply: replySchema,
    heldAt: nullable('integer'),
    heldBy: nullable('string'),
    failedReason: nullable('string'),
  },
  required: [
    'routeId',
    'jobId',
    'messageId',
    'state',
    'kind',
    'sender',
    'recipients',
    'queuedAt',
    'attempts',
    'nextAttemptAt',
    'lastReply',
    'heldAt',
    'heldBy',
    'failedReason',
  ],
} as const;

export const actionResultSchema = {
  type: 'object',
  properties: {
    routeId: str,
    jobId: str,
    messageId: str,
    action: actionSchema,
    outcome: { type: 'string', enum: ['done', 'unchanged'] },
    state: { type: 'string', enum: [...QUEUE_STATES, 'done'] },
    dsn: { type: 'string', enum: ['sent', 'failed'] },
  },
  required: ['routeId', 'jobId', 'messageId', 'action', 'outcome', 'state'],
} as const;

export const trackingEventSchema = {
  type: 'object',
  properties: {
    type: str,
    messageId: str,
    time: int,
    routeId: str,
    sender: str,
    recipients: strings,
    host: str,
    reply: str,
    node: str,
    size: int,
    client: str,
    filters: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          filter: str,
          verdict: str,
          ms: num,
          result: { type: 'object', additionalProperties: true },
        },
        required: ['filter', 'verdict', 'ms', 'result'],
      },
    },
  },
  required: ['type', 'messageId'],
} as const;

export const countsSchema = {
  type: 'object',
  properties: { waiting: int, active: int, deferred: int, held: int, failed: int },
  required: ['waiting', 'active', 'deferred', 'held', 'failed'],
} as const;

export const nodeSchema = {
  type: 'object',
  properties: {
    id: str,
    hostname: str,
    pid: int,
    roles: strings,
    version: str,
    nodeVersion: str,
    startedAt: int,
    lastSeen: int,
    uptimeSeconds: int,
    stats: { type: 'object', additionalProperties: num },
  },
  required: ['id', 'hostname', 'pid', 'roles', 'version', 'startedAt', 'uptimeSeconds', 'stats'],
} as const;
