import type { RoleContext, Service } from '../run-roles.js';

/** The worker role. */
export async function startWorkerRole(context: RoleContext): Promise<Service> {
  context.log.warn({ event: 'role.not_built', role: 'worker' }, 'the worker role is not built yet');
  return { name: 'worker', stop: async () => {} };
}
