import { bodyCacheFor, startDelivery } from '@moat/delivery';
import { usableCpus } from '../cpus.js';
import type { RoleContext, Service } from '../run-roles.js';
import { startDeliveryThread } from './worker-thread.js';

/**
 * The worker role: the delivery workers of every route, until stopped. In a process that also
 * runs the edge, delivery gets a thread of its own (delivery.thread), so `moat start` uses two
 * cores while staying one process.
 */
export async function startWorkerRole(context: RoleContext): Promise<Service> {
  if (useThread(context)) return startDeliveryThread(context);
  // With the edge on this event loop, its bodies go straight into the cache.
  const bodies = context.roles.includes('edge') ? bodyCacheFor(context.config.delivery.bodyCache) : null;
  const delivery = await startDelivery({
    config: context.config,
    redisUrl: context.redisUrl,
    log: context.log.child({ role: 'worker' }),
    nodeId: context.nodeId,
    counters: context.counters,
    bodies: bodies ?? undefined,
  });
  if (bodies) context.bodies.deliverTo((id, body) => bodies.put(id, body));
  return {
    name: 'worker',
    async stop() {
      context.bodies.deliverTo(null);
      await delivery.stop();
    },
    stats: () => delivery.stats(),
  };
}

function useThread(context: RoleContext): boolean {
  const setting = context.config.delivery.thread;
  if (!context.roles.includes('edge')) return false;
  return setting === 'auto' ? usableCpus() > 1 : setting;
}
