/** Builds each role from its package (roles/<role>.ts). */
import { startAdminRole } from './roles/admin.js';
import { startEdgeRole } from './roles/edge.js';
import { startWorkerRole } from './roles/worker.js';
import type { Role, RoleContext, Service } from './run-roles.js';

const STARTERS: Record<Role, (context: RoleContext) => Promise<Service>> = {
  edge: startEdgeRole,
  worker: startWorkerRole,
  admin: startAdminRole,
};

export function buildRole(role: Role, context: RoleContext): Promise<Service> {
  return STARTERS[role](context);
}
