import type { RoleContext, Service } from '../run-roles.js';

/** The edge role. */
export async function startEdgeRole(context: RoleContext): Promise<Service> {
  context.log.warn({ event: 'role.not_built', role: 'edge' }, 'the edge role is not built yet');
  return { name: 'edge', stop: async () => {} };
}
