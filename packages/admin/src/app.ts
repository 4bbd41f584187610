/**
 * The admin API as a fastify instance, built but not listening: the admin role calls
 * `listen`, tests call `app.inject()`. Every route is schema-first; every route but the
 * public ones (health, ready, metrics, the dashboard's static page) needs a bearer token
 * (`read` for GET, `admin` for everything else), checked before the route runs.
 */
import swagger from '@fastify/swagger';
import { compileRelayPolicy, type MoatConfig, type RelayPolicy } from '@moat/policy';
import type { BounceHook, Spool } from '@moat/spool';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { type Principal, type Scope, tokenChecker } from './auth.js';
import type { AdminDeps } from './deps.js';
import { errorBody, installErrorHandler } from './errors.js';
import { boardAuthorization, registerBullBoard } from './routes/bull-board.js';
import { registerDashboardRoutes } from './routes/dashboard.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerMetricsRoutes } from './routes/metrics.js';
import { registerNodeRoutes } from './routes/nodes.js';
import { registerPartitionRoutes } from './routes/partitions.js';
import { registerQueueRoutes } from './routes/queue.js';
import { registerBulkRoutes } from './routes/queue-bulk.js';
import { registerRecipientRoutes } from './routes/recipients.js';
import { registerRouteRoutes } from './routes/routes.js';
import { registerSelftestRoutes } from './routes/selftest.js';
import { registerTrackingRoutes } from './routes/tracking.js';

export interface AdminAppOptions {
  readonly config: Readonly<MoatConfig>;
  readonly spool: Spool;
  readonly nodeId: string;
  readonly version: string;
  /** The relay policy compiled from `config` (compiled here when not given). */
  readonly relayPolicy?: RelayPolicy;
  /** The process log; request lines carry method, url, status and time, never headers or bodies. */
  readonly log?: FastifyBaseLogger;
  /** PEM key and certificate: serve HTTPS. */
  readonly https?: { readonly key: string | Buffer; readonly cert: string | Buffer } | null;
  readonly bounce?: BounceHook;
  readonly ready?: () => Promise<Record<string, boolean>> | Record<string, boolean>;
  /** What /ready reports without being unready. */
  readonly warnings?: () => string[];
  readonly startedAt?: number;
}

/** Per-route access, in `config.auth` of a route: `public` needs no token. */
export type RouteAuth = Scope | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export const BODY_LIMIT = 64 * 1024;

export async function buildAdminApp(options: AdminAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.log ? { loggerInstance: options.log } : { logger: false }),
    ...(options.https ? { https: { key: options.https.key, cert: options.https.cert } } : {}),
    bodyLimit: BODY_LIMIT,
    return503OnClosing: true,
    ajv: {
      customOptions: {
        removeAdditional: false,
        coerceTypes: 'array',
        allErrors: false,
        allowUnionTypes: true,
      },
    },
  }) as unknown as FastifyInstance;
  const deps: AdminDeps = {
    config: options.config,
    spool: options.spool,
    policy: options.relayPolicy ?? compileRelayPolicy(options.config as MoatConfig),
    nodeId: options.nodeId,
    version: options.version,
    startedAt: options.startedAt ?? Date.now(),
    bounce: options.bounce,
    ready: async () => (options.ready ? await options.ready() : {}),
    warnings: () => options.warnings?.() ?? [],
  };

  installErrorHandler(app);
  installAuth(app, options.config.admin.tokens);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Moat admin API',
        version: options.version,
        description: 'Queue, routes, nodes, tracking, metrics and relay self-test of a Moat installation.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  registerHealthRoutes(app, deps);
  registerMetricsRoutes(app, deps);
  registerQueueRoutes(app, deps);
  registerBulkRoutes(app, deps);
  registerRouteRoutes(app, deps);
  registerNodeRoutes(app, deps);
  registerPartitionRoutes(app, deps);
  registerTrackingRoutes(app, deps);
  registerRecipientRoutes(app, deps);
  registerSelftestRoutes(app, deps);
  registerDashboardRoutes(app);
  const stopBoard = await registerBullBoard(app, deps);
  app.addHook('onClose', async () => stopBoard());
  app.get('/openapi.json', { schema: { hide: true }, config: { auth: 'read' } }, async () => app.swagger());
  await app.ready();
  return app;
}

/**
 * One hook for every route: a route's `config.auth` says what it needs; without one, GET and
 * HEAD need `read` and everything else `admin`, so a new route is never public by mistake.
 */
function installAuth(app: FastifyInstance, tokens: MoatConfig['admin']['tokens']): void {
  const check = tokenChecker(tokens);
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request, reply) => {
    const declared = request.routeOptions.config?.auth;
    if (declared === 'public') return;
    // Unknown URLs answer 404 only to a valid token, so they reveal nothing either.
    const needed: Scope =
      declared ?? (request.method === 'GET' || request.method === 'HEAD' ? 'read' : 'admin');
    // bull-board's own page requests carry the token in its cookie (routes/bull-board.ts).
    const authorization =
      request.headers.authorization ?? boardAuthorization(request.url, request.headers.cookie);
    const result = check(authorization, needed);
    if (!result.ok) {
      if (result.status === 401) reply.header('www-authenticate', 'Bearer realm="moat"');
      return reply.code(result.status).send(errorBody(result.status, result.message));
    }
    request.principal = result.principal;
  });
}
