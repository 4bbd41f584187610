/** What the routes need, built once by `buildAdminApp` and handed to each route module. */
import type { MoatConfig, RelayPolicy } from '@moat/policy';
import type { BounceHook, Spool } from '@moat/spool';

export interface AdminDeps {
  readonly config: Readonly<MoatConfig>;
  readonly spool: Spool;
  readonly policy: RelayPolicy;
  readonly nodeId: string;
  readonly version: string;
  readonly startedAt: number;
  /** Sends a DSN for a deleted job (from the delivery package); without it, delete with dsn is refused. */
  readonly bounce: BounceHook | undefined;
  /** Extra readiness checks (this node's roles), each true when fine. */
  readonly ready: () => Promise<Record<string, boolean>>;
  /** Conditions /ready reports while still ready (e.g. acknowledging without replicas). */
  readonly warnings: () => string[];
}

/** Route ids the config names (inbound routes and the outbound one), sorted. */
export function configuredRoutes(deps: AdminDeps): string[] {
  return [...deps.policy.routes.keys()].sort();
}
