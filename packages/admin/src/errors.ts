/**
 * One error shape for every route: `{ statusCode, error, message }`, never a stack trace.
 * Bad input is 400 naming the field; unknown ids 404; a job that moved meanwhile 409;
 * Redis unreachable 503; anything else 500 with a generic message (the log has the details).
 */
import { QueueOpError } from '@moat/spool';
import type { FastifyError, FastifyInstance } from 'fastify';

export const errorSchema = {
  type: 'object',
  properties: {
    statusCode: { type: 'integer' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
  required: ['statusCode', 'error', 'message'],
} as const;

const NAMES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error a route throws on purpose, with its status. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

export function errorBody(statusCode: number, message: string) {
  return { statusCode, error: NAMES[statusCode] ?? 'Error', message };
}

function isRedisDown(err: Error): boolean {
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|Command timed out|max retries per request/i.test(
    err.message,
  );
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    let status = 500;
    let message = 'internal error (see the admin log)';
    if (err.validation) {
      status = 400;
      message = err.message; // e.g. querystring/limit must be <= 500
    } else if (err instanceof HttpError) {
      status = err.statusCode;
      message = err.message;
    } else if (err instanceof QueueOpError) {
      status = err.code === 'not-found' ? 404 : err.code === 'conflict' ? 409 : 400;
      message = err.message;
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode;
      message = err.message;
    } else if (isRedisDown(err)) {
      status = 503;
      message = 'Redis is not reachable';
    }
    if (status >= 500) request.log.error({ event: 'admin.error', err }, 'request failed');
    return reply.code(status).type('application/json').send(errorBody(status, message));
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody(404, `no route ${request.method} ${request.url.split('?')[0]}`)),
  );
}
