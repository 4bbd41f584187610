/** GET /metrics: Prometheus text, public like the probes (it holds counts, not mail). */
import type { FastifyInstance } from 'fastify';
import type { AdminDeps } from '../deps.js';
import { configuredRoutes } from '../deps.js';
import { MetricsCollector } from '../metrics.js';

export function registerMetricsRoutes(app: FastifyInstance, deps: AdminDeps): void {
  const collector = new MetricsCollector(
    deps.spool,
    deps.nodeId,
    () => configuredRoutes(deps),
    deps.config.redis.maxMemoryUsage,
  );
  app.addHook('onClose', async () => collector.close());
  app.get(
    '/metrics',
    {
      config: { auth: 'public' },
      schema: {
        tags: ['probes'],
        summary: 'Prometheus metrics: queue figures from Redis, counters from every node, process figures',
        security: [],
        produces: ['text/plain'],
        response: { 200: { type: 'string' } },
      },
    },
    async (_request, reply) => {
      const text = await collector.scrape();
      return reply.type(collector.contentType).send(text);
    },
  );
}
