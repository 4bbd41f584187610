import type { RoleContext, Service } from '../run-roles.js';

/** The admin role. */
export async function startAdminRole(context: RoleContext): Promise<Service> {
  context.log.warn({ event: 'role.not_built', role: 'admin' }, 'the admin role is not built yet');
  return { name: 'admin', stop: async () => {} };
}
