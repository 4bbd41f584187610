import { startDelivery } from '@moat/delivery';
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
  const delivery = await startDelivery({
    config: context.config,
    redisUrl: context.redisUrl,
    log: context.log.child({ role: 'worker' }),
    nodeId: context.nodeId,
    counters: context.counters,
  });
  return {
    name: 'worker',
    stop: () => delivery.stop(),
    stats: () => ({ deliveryRoutes: delivery.routes().length, activeJobs: delivery.active() }),
  };
}

function useThread(context: RoleContext): boolean {
  const setting = context.config.delivery.thread;
  if (!context.roles.includes('edge')) return false;
  return setting === 'auto' ? usableCpus() > 1 : setting;
}
