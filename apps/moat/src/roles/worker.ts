import { startDelivery } from '@moat/delivery';
import type { RoleContext, Service } from '../run-roles.js';

/** The worker role: the delivery workers of every route, until stopped. */
export async function startWorkerRole(context: RoleContext): Promise<Service> {
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
    stats: () => ({ deliveryRoutes: delivery.routes().length }),
  };
}
