/** `moat route list|pause <route>|resume <route>`, `moat partitions` and `moat track <query>`. */
import type { TrackingEvent } from '@moat/spool';
import type { Io } from '../io.js';
import { type AdminClient, CommandError, type Flags } from './admin-http.js';
import { eventsTable, limitFlag } from './admin-queue.js';
import { age, table } from './table.js';

interface RouteView {
  routeId: string;
  configured: boolean;
  domains: string[];
  hosts: string[];
  paused: boolean;
  counts: Record<'waiting' | 'active' | 'deferred' | 'held' | 'failed', number>;
  oldestAgeSeconds: number | null;
}

export async function routeCommand(
  args: readonly string[],
  flags: Flags,
  io: Io,
  api: AdminClient,
): Promise<number> {
  const [sub, id, ...extra] = args;
  if (extra.length > 0) throw new CommandError(`unexpected arguments: ${extra.join(' ')}`, true);
  if (sub === 'list' && id === undefined) {
    const { routes } = await api.get<{ routes: RouteView[] }>('/routes');
    if (flags.json) io.out(`${JSON.stringify({ routes }, null, 2)}\n`);
    else io.out(routesTable(routes));
    return 0;
  }
  if ((sub === 'pause' || sub === 'resume') && id) {
    const route = await api.request<RouteView>('POST', `/routes/${encodeURIComponent(id)}/${sub}`);
    if (flags.json) io.out(`${JSON.stringify(route, null, 2)}\n`);
    else io.out(`route ${route.routeId} ${route.paused ? 'paused' : 'running'}\n${routesTable([route])}`);
    return 0;
  }
  throw new CommandError(
    'usage: moat route list | moat route pause <route> | moat route resume <route>',
    true,
  );
}

function routesTable(routes: readonly RouteView[]): string {
  return table(
    ['ROUTE', 'STATE', 'WAITING', 'ACTIVE', 'DEFERRED', 'HELD', 'FAILED', 'OLDEST', 'DOMAINS'],
    routes.map((r) => [
      r.routeId,
      r.paused ? 'paused' : 'running',
      r.counts.waiting,
      r.counts.active,
      r.counts.deferred,
      r.counts.held,
      r.counts.failed,
      r.oldestAgeSeconds === null ? null : age(r.oldestAgeSeconds * 1000),
      r.configured ? r.domains.join(',') : '(not configured)',
    ]),
  );
}

/** `moat track <query>`: a message id, an address (as sender or recipient), or "@domain". */
export async function trackCommand(
  args: readonly string[],
  flags: Flags,
  io: Io,
  api: AdminClient,
): Promise<number> {
  const [query, ...extra] = args;
  if (!query || extra.length > 0) {
    throw new CommandError('usage: moat track <message-id | address | @domain> [--limit N] [--json]', true);
  }
  const key = query.startsWith('@') ? 'recipient' : query.includes('@') ? 'address' : 'messageId';
  const { events } = await api.get<{ events: TrackingEvent[] }>('/tracking', {
    [key]: query,
    limit: limitFlag(flags, 100),
  });
  io.out(flags.json ? `${JSON.stringify({ events }, null, 2)}\n` : eventsTable(events));
  return 0;
}

interface PartitionView {
  partition: number;
  tag: string;
  slot: number;
  messages: number;
  placing: boolean;
}

/** `moat partitions`: each queue partition, its slot, what it holds, and whether new mail goes there. */
export async function partitionsCommand(
  args: readonly string[],
  flags: Flags,
  io: Io,
  api: AdminClient,
): Promise<number> {
  if (args.length > 0) throw new CommandError(`unexpected arguments: ${args.join(' ')}`, true);
  const view = await api.get<{ placement: number; partitions: PartitionView[] }>('/partitions');
  if (flags.json) {
    io.out(`${JSON.stringify(view, null, 2)}\n`);
    return 0;
  }
  io.out(
    `new mail goes to ${view.placement > 1 ? `partitions 1-${view.placement}` : 'partition 0'}\n${table(
      ['PARTITION', 'TAG', 'SLOT', 'MESSAGES', 'NEW MAIL'],
      view.partitions.map((p) => [p.partition, p.tag, p.slot, p.messages, p.placing ? 'yes' : 'drains']),
    )}`,
  );
  return 0;
}
