/**
 * One delivery attempt of one message on one route: group the recipients by destination,
 * find the targets, try them in order (next one on a connection failure, a 4xx/5xx greeting
 * or a TLS failure), and turn every recipient's answer into an outcome.
 */
import { classifyReply, enhancedStatus, type Outcome, type Route } from '@moat/policy';
import type { Logger } from 'pino';
import { describeTarget, findTargets } from './destinations.js';
import type { DnsResolver } from './dns-resolver.js';
import { type ConnectionPool, HostBusy } from './pool.js';
import { HostFailure, type SessionSettings, type SmtpReply, type SmtpSession } from './smtp-session.js';

export interface AttemptSettings {
  readonly helo: string;
  readonly mxPort: number;
  readonly verifyCertificates: boolean;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  /**
   * Jobs that may wait for a busy relay host (a route with its own hosts, such as the internal
   * smart host): all of the route's slots, since its mail has nowhere else to go. MX hosts keep
   * the pool's smaller default, so one slow domain holds only a bounded share of the slots.
   */
  readonly relayWaiting: number;
}

export interface AttemptContext {
  readonly resolver: DnsResolver;
  readonly pool: ConnectionPool;
  readonly settings: AttemptSettings;
  readonly log: Logger;
}

/** What happened to one recipient. 'busy': not tried, its host had no free connection. */
export interface RecipientResult {
  readonly recipient: string;
  readonly outcome: Outcome | 'busy';
  /** Enhanced status code (RFC 3463) for DSNs. */
  readonly status: string;
  /** The remote answer, when a host answered. */
  readonly reply?: SmtpReply | undefined;
  /** What to tell people: the remote answer or why there was none. */
  readonly text: string;
  /** The host that answered, as "name[address]:port". */
  readonly host?: string | undefined;
  /** The host's name alone, for the DSN's Remote-MTA. */
  readonly hostName?: string | undefined;
}

export interface AttemptInput {
  readonly route: Route;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly body: Buffer;
  /** The body's line endings are all CRLF (DeliveryJob.crlf): the send skips its own check. */
  readonly crlf?: boolean | undefined;
}

const domainOf = (address: string): string => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/** Deliver to every recipient once; never throws for remote trouble (only for bugs). */
export async function attemptDelivery(ctx: AttemptContext, input: AttemptInput): Promise<RecipientResult[]> {
  const groups = new Map<string, string[]>();
  for (const r of input.recipients) {
    // A smart host takes every recipient in one transaction; MX delivery goes per domain.
    const key = input.route.hops.length === 0 ? domainOf(r) : '';
    const group = groups.get(key) ?? [];
    group.push(r);
    groups.set(key, group);
  }
  const results = await Promise.all(
    [...groups].map(([domain, recipients]) => deliverGroup(ctx, input, domain, recipients)),
  );
  return results.flat();
}

async function deliverGroup(
  ctx: AttemptContext,
  input: AttemptInput,
  domain: string,
  recipients: readonly string[],
): Promise<RecipientResult[]> {
  const all = (r: Omit<RecipientResult, 'recipient'>) => recipients.map((recipient) => ({ recipient, ...r }));
  const found = await findTargets(ctx.resolver, input.route, domain, ctx.settings.mxPort);
  if (!found.ok) {
    return all({ outcome: found.permanent ? 'failed' : 'deferred', status: found.status, text: found.text });
  }
  let last: HostFailure | undefined;
  for (const target of found.targets) {
    const settings: SessionSettings = {
      target,
      helo: ctx.settings.helo,
      tls: input.route.tls,
      verifyCertificates: ctx.settings.verifyCertificates,
      connectTimeout: ctx.settings.connectTimeout,
      commandTimeout: ctx.settings.commandTimeout,
      auth: input.route.auth,
    };
    const where = describeTarget(target);
    let session: SmtpSession;
    try {
      session = await ctx.pool.acquire(
        settings,
        (s) => ctx.log.info({ event: 'delivery.tls', host: where, ...s.tls }, `connected to ${where}`),
        input.route.hops.length > 0 ? ctx.settings.relayWaiting : undefined,
      );
    } catch (err) {
      if (err instanceof HostBusy) {
        return all({ outcome: 'busy', status: '4.4.5', text: err.message, host: where });
      }
      if (!(err instanceof HostFailure)) throw err;
      last = err;
      ctx.log.warn(
        { event: 'delivery.host_failed', host: where, stage: err.stage, reply: err.reply.text },
        `${where} failed, trying the next host`,
      );
      continue;
    }
    let reusable = false;
    try {
      const replies = await session.send(input.sender, recipients, input.body, input.crlf === true);
      reusable = replies.every((r) => r.code !== 0);
      return replies.map((r) => ({
        recipient: r.recipient,
        outcome: classifyReply(r).outcome,
        status: r.code === 0 ? '4.4.2' : enhancedStatus(r.code, r.text),
        reply: r.code === 0 ? undefined : { code: r.code, text: r.text },
        text: r.text,
        host: where,
        hostName: target.name,
      }));
    } finally {
      ctx.pool.release(session, reusable);
    }
  }
  const failure = last?.reply ?? { code: 0, text: 'no host to try' };
  const outcome = last?.stage === 'connect' ? classifyReply(failure).outcome : 'deferred';
  return all({
    outcome,
    status: failure.code === 0 ? (last?.status ?? '4.4.1') : enhancedStatus(failure.code, failure.text),
    reply: failure.code === 0 ? undefined : failure,
    text: failure.text,
    host: last ? describeTarget(last.target) : undefined,
    hostName: last?.target.name,
  });
}
