/**
 * `moat queue list|show|retry|hold|release|delete`: the queue through the admin API, as
 * Postfix's postqueue/postsuper. An action with a message id acts on that message; without
 * one, on every job matching the filter flags (--sender, --recipient, --route, --state,
 * --older-than), after a look with --dry-run if wanted.
 */
import type { ActionResult, QueuedJob, TrackingEvent } from '@moat/spool';
import type { Io } from '../io.js';
import { type AdminClient, CommandError, type Flags } from './admin-http.js';
import { age, table, time } from './table.js';

const STATES = ['waiting', 'active', 'deferred', 'held', 'failed'] as const;
const ACTIONS = ['retry', 'hold', 'release', 'delete'] as const;

interface JobPage {
  total: number;
  jobs: QueuedJob[];
}

interface MessageView {
  id: string;
  sender: string;
  size: number;
  receivedAt: number;
  kind: string;
  client: { ip: string; helo: string; user: string | null; tls: boolean };
  recipients: string[];
  headers: { name: string; value: string }[];
  jobs: (Partial<QueuedJob> & { routeId: string; jobId: string; state: string })[];
  events: TrackingEvent[];
}

export async function queueCommand(
  args: readonly string[],
  flags: Flags,
  io: Io,
  api: AdminClient,
): Promise<number> {
  const [sub, id, ...extra] = args;
  if (extra.length > 0) throw new CommandError(`unexpected arguments: ${extra.join(' ')}`, true);
  if (sub === 'list') return list(flags, io, api);
  if (sub === 'show') {
    if (!id) throw new CommandError('usage: moat queue show <message-id>', true);
    return show(id, flags, io, api);
  }
  if ((ACTIONS as readonly string[]).includes(sub ?? ''))
    return act(sub as (typeof ACTIONS)[number], id, flags, io, api);
  throw new CommandError(`usage: moat queue list|show|retry|hold|release|delete …`, true);
}

function stateFlag(flags: Flags): (typeof STATES)[number] | undefined {
  const s = flags.state;
  if (s === undefined) return undefined;
  if (typeof s !== 'string' || !(STATES as readonly string[]).includes(s)) {
    throw new CommandError(`--state must be one of ${STATES.join(', ')}`, true);
  }
  return s as (typeof STATES)[number];
}

export function limitFlag(flags: Flags, fallback: number): number {
  if (flags.limit === undefined) return fallback;
  const n = Number(flags.limit);
  if (!Number.isInteger(n) || n < 1) throw new CommandError('--limit must be a whole number >= 1', true);
  return n;
}

const str = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

async function list(flags: Flags, io: Io, api: AdminClient): Promise<number> {
  const one = stateFlag(flags);
  const limit = limitFlag(flags, 50);
  const states = one ? [one] : STATES;
  const pages = await Promise.all(
    states.map((state) => api.get<JobPage>('/queue', { state, route: str(flags.route), limit })),
  );
  if (flags.json) {
    io.out(`${JSON.stringify(Object.fromEntries(states.map((s, i) => [s, pages[i]])), null, 2)}\n`);
    return 0;
  }
  const now = Date.now();
  const rows = pages.flatMap((p) =>
    p.jobs.map((j) => [
      j.messageId,
      j.state,
      j.routeId,
      age(now - j.queuedAt),
      j.attempts,
      j.sender || '<>',
      j.recipients.join(','),
      j.state === 'held'
        ? `held by ${j.heldBy ?? '?'}`
        : j.lastReply
          ? `${j.lastReply.code} ${j.lastReply.text}`
          : (j.failedReason ?? ''),
    ]),
  );
  if (rows.length > 0)
    io.out(table(['MESSAGE', 'STATE', 'ROUTE', 'AGE', 'TRIES', 'SENDER', 'RECIPIENTS', 'LAST REPLY'], rows));
  io.out(
    `${states.map((s, i) => `${s}: ${pages[i]?.total ?? 0}`).join(', ')}${rows.length === 0 ? ' (queue empty)' : ''}\n`,
  );
  return 0;
}

async function show(id: string, flags: Flags, io: Io, api: AdminClient): Promise<number> {
  const m = await api.get<MessageView>(`/queue/${encodeURIComponent(id)}`);
  if (flags.json) {
    io.out(`${JSON.stringify(m, null, 2)}\n`);
    return 0;
  }
  const client = `${m.client.ip} (helo ${m.client.helo}${m.client.user ? `, user ${m.client.user}` : ''}${m.client.tls ? ', TLS' : ''})`;
  io.out(
    [
      `message:    ${m.id}${m.kind === 'dsn' ? ' (a DSN)' : ''}`,
      `received:   ${time(m.receivedAt)} from ${client}`,
      `sender:     ${m.sender || '<>'}`,
      `recipients: ${m.recipients.join(', ')}`,
      `size:       ${m.size} bytes`,
      '',
    ].join('\n'),
  );
  io.out(
    table(
      ['ROUTE', 'STATE', 'TRIES', 'NEXT ATTEMPT', 'RECIPIENTS', 'LAST REPLY'],
      m.jobs.map((j) => [
        j.routeId,
        j.state,
        j.attempts ?? null,
        j.nextAttemptAt ? time(j.nextAttemptAt) : null,
        j.recipients?.join(',') ?? null,
        j.lastReply
          ? `${j.lastReply.code} ${j.lastReply.text}${j.lastReply.host ? ` (${j.lastReply.host})` : ''}`
          : null,
      ]),
    ),
  );
  io.out(`\n${m.headers.map((h) => `${h.name}: ${h.value}`).join('\n')}\n\n`);
  io.out(eventsTable(m.events));
  return 0;
}

export function eventsTable(events: readonly TrackingEvent[]): string {
  if (events.length === 0) return 'no events\n';
  return table(
    ['TIME', 'EVENT', 'MESSAGE', 'ROUTE', 'SENDER', 'RECIPIENTS', 'HOST', 'REPLY', 'FILTERS'],
    events.map((e) => [
      time(e.time),
      e.type,
      e.messageId,
      e.routeId ?? null,
      e.sender === undefined ? null : e.sender || '<>',
      e.recipients?.join(',') ?? null,
      e.host ?? null,
      e.reply ?? null,
      e.filters ? e.filters.map(filterSummary).join('; ') : null,
    ]),
  );
}

/** "clamav accept", "rspamd tag score=12.5", "authentication accept spf=pass dkim=pass dmarc=fail". */
function filterSummary(f: NonNullable<TrackingEvent['filters']>[number]): string {
  const r = f.result;
  const details = ['signature', 'action', 'score', 'spf', 'dkim', 'dmarc', 'arc', 'error']
    .filter((k) => r[k] !== undefined && typeof r[k] !== 'object')
    .map((k) => `${k}=${String(r[k])}`);
  return [f.filter, f.verdict, ...details].join(' ');
}

async function act(
  action: (typeof ACTIONS)[number],
  id: string | undefined,
  flags: Flags,
  io: Io,
  api: AdminClient,
): Promise<number> {
  let results: ActionResult[];
  let summary = '';
  if (id !== undefined) {
    const route = str(flags.route);
    results =
      action === 'delete'
        ? (
            await api.request<{ results: ActionResult[] }>(
              'DELETE',
              `/queue/${encodeURIComponent(id)}?${new URLSearchParams({ ...(route ? { route } : {}), dsn: String(flags.dsn === true) })}`,
            )
          ).results
        : (
            await api.request<{ results: ActionResult[] }>(
              'POST',
              `/queue/${encodeURIComponent(id)}/${action}`,
              route ? { route } : {},
            )
          ).results;
  } else {
    const filter = {
      ...(str(flags.route) ? { route: str(flags.route) } : {}),
      ...(str(flags.sender) !== undefined ? { sender: str(flags.sender) } : {}),
      ...(str(flags.recipient) ? { recipientDomain: str(flags.recipient) } : {}),
      ...(str(flags['older-than']) ? { olderThan: str(flags['older-than']) } : {}),
      ...(stateFlag(flags) ? { states: [stateFlag(flags)] } : {}),
    };
    if (Object.keys(filter).length === 0) {
      throw new CommandError(
        `usage: moat queue ${action} <message-id> [--route R], or a filter: --sender, --recipient DOMAIN, --route, --state, --older-than`,
        true,
      );
    }
    const bulk = await api.request<{
      matched: number;
      results: ActionResult[];
      errors: { routeId: string; jobId: string; error: string }[];
    }>('POST', '/queue/bulk', { action, filter, dryRun: flags['dry-run'] === true, dsn: flags.dsn === true });
    results = bulk.results;
    summary = `${bulk.matched} matched${flags['dry-run'] ? ' (dry run: nothing changed)' : ''}${bulk.errors.length ? `, ${bulk.errors.length} failed` : ''}\n`;
    for (const e of bulk.errors) io.err(`moat: ${e.routeId} ${e.jobId}: ${e.error}\n`);
  }
  if (flags.json) {
    io.out(`${JSON.stringify({ results }, null, 2)}\n`);
    return 0;
  }
  if (results.length > 0) {
    io.out(
      table(
        ['MESSAGE', 'ROUTE', 'ACTION', 'OUTCOME', 'STATE', 'DSN'],
        results.map((r) => [r.messageId, r.routeId, r.action, r.outcome, r.state, r.dsn ?? null]),
      ),
    );
  }
  io.out(summary);
  return 0;
}
