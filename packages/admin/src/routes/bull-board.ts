/**
 * bull-board at /bull-board: the BullMQ-level view of every route's queue (jobs by state, their
 * data and errors). It is behind the admin API's tokens like everything else: a read token
 * may look, actions (retry, promote, clean, remove) need an admin token. Its page makes its
 * own requests without the Authorization header, so it takes the token from a cookie that
 * POST /bull-board/session sets (HttpOnly, SameSite=Strict, Path=/bull-board) after a
 * bearer-authenticated request: the dashboard does that when it opens the link.
 *
 * It acts on BullMQ jobs directly: removing a job there leaves its body to the orphan sweep
 * (10 minutes) instead of releasing it, and no tracking event is written. Moat's own queue
 * actions (dashboard, `moat queue`, /queue) keep the spool's bookkeeping.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { configuredRoutes } from '../deps.js';

export const BULL_BOARD_PATH = '/bull-board';
export const SESSION_COOKIE = 'moat_board';

/** Registers bull-board; resolves with a function that stops its queue refresh. */
export async function registerBullBoard(app: FastifyInstance, deps: AdminDeps): Promise<() => void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Moat queues' } },
  });
  // Routes appear when mail first takes them, partitions when redis.partitions grows: the
  // list is read again every 30 s. A route has a queue per partition ("route · p7").
  const refresh = async () => {
    const ids = new Set([...configuredRoutes(deps), ...(await deps.spool.knownRoutes().catch(() => []))]);
    const partitions = await deps.spool.refreshLayout(true).catch(() => deps.spool.partitions());
    board.replaceQueues(
      [...ids].sort().flatMap((id) =>
        partitions.map(
          (p) =>
            new BullMQAdapter(deps.spool.queue(id, p), {
              displayName: partitions.length > 1 ? `${id} · p${p}` : id,
              allowRetries: true,
            }),
        ),
      ),
    );
  };
  await refresh();
  const timer = setInterval(() => void refresh(), 30_000);
  timer.unref();

  await app.register(
    async (scope) => {
      scope.post('/session', { config: { auth: 'read' }, schema: { hide: true } }, async (request, reply) => {
        const token = /^Bearer[ \t]+(\S+)/i.exec(request.headers.authorization ?? '')?.[1] ?? '';
        const secure = request.protocol === 'https' ? '; Secure' : '';
        reply.header(
          'set-cookie',
          `${SESSION_COOKIE}=${encodeURIComponent(token)}; Path=${BULL_BOARD_PATH}; HttpOnly; SameSite=Strict${secure}`,
        );
        return { ok: true };
      });
      await scope.register(serverAdapter.registerPlugin());
    },
    { prefix: BULL_BOARD_PATH },
  );
  return () => clearInterval(timer);
}

/** The token a bull-board request carries in its cookie, as an Authorization header value. */
export function boardAuthorization(url: string, cookie: string | undefined): string | undefined {
  if (!url.startsWith(`${BULL_BOARD_PATH}/`) && url !== BULL_BOARD_PATH) return undefined;
  const m = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([^;]*)`).exec(cookie ?? '');
  return m?.[1] ? `Bearer ${decodeURIComponent(m[1])}` : undefined;
}
