/**
 * Delivery status notifications on their way out: composed by the policy core, queued with the
 * null sender on the route that the sender's own address takes, like any other message. Never
 * to the null sender; a DSN about a DSN is never made (the failed one is dropped with a log line).
 */
import { randomBytes } from 'node:crypto';
import {
  composeDsn,
  type DsnAction,
  type DsnRecipient,
  findInbound,
  headerSection,
  isAddressError,
  parseAddress,
  type RelayPolicy,
  type Route,
} from '@moat/policy';
import type { DeliveryJob, Spool } from '@moat/spool';
import type { Logger } from 'pino';

export interface BounceContext {
  readonly spool: Spool;
  readonly policy: RelayPolicy;
  /** config `hostname`. */
  readonly hostname: string;
  /** config `delivery.bounces`. */
  readonly enabled: boolean;
  /** Called with the route a DSN was queued on, so a worker for it runs. */
  readonly onRoute?: ((routeId: string) => void) | undefined;
}

/** The route mail to `sender` takes: its domain's inbound route when it is ours, else outbound. */
export function routeForSender(policy: RelayPolicy, sender: string): Route | null {
  const parsed = parseAddress(sender);
  if (isAddressError(parsed) || parsed.domain.startsWith('[')) return null;
  return findInbound(policy, parsed.domain)?.route ?? policy.outbound;
}

export interface Report {
  readonly action: DsnAction;
  readonly recipients: readonly DsnRecipient[];
  readonly willRetryUntil?: Date | undefined;
}

/**
 * Queue a DSN about `job` to its sender, or log why none goes out. Returns the DSN's id, or
 * null when none was queued. Errors from Redis propagate (the job is retried).
 */
export async function sendReport(
  ctx: BounceContext,
  log: Logger,
  job: DeliveryJob,
  body: Buffer,
  report: Report,
): Promise<string | null> {
  const recipients = report.recipients.map((r) => r.recipient);
  const drop = async (reason: string, event: 'delivery.dsn_dropped' | 'delivery.dsn_skipped') => {
    log.warn({ event, reason, action: report.action, recipients }, `no DSN sent: ${reason}`);
    await ctx.spool.track({
      type: 'dsn-dropped',
      messageId: job.messageId,
      routeId: job.routeId,
      sender: job.sender,
      recipients,
      reply: reason,
    });
    return null;
  };
  if (job.kind === 'dsn') return drop('the failed message is itself a DSN', 'delivery.dsn_dropped');
  if (job.sender === '') return drop('the sender is the null sender <>', 'delivery.dsn_skipped');
  if (!ctx.enabled) return drop('delivery.bounces is off', 'delivery.dsn_skipped');
  const route = routeForSender(ctx.policy, job.sender);
  if (route === null) return drop(`no route to the sender ${job.sender}`, 'delivery.dsn_dropped');

  const id = ctx.spool.newMessageId();
  const dsn = composeDsn({
    action: report.action,
    reportingMta: ctx.hostname,
    to: job.sender,
    queueId: job.messageId,
    arrivalDate: new Date(job.queuedAt),
    date: new Date(),
    messageId: `${id}@${ctx.hostname}`,
    boundary: `moat-${id}-${randomBytes(6).toString('hex')}`,
    recipients: report.recipients,
    originalHeaders: headerSection(body.toString('utf8')),
    envid: job.envid,
    willRetryUntil: report.willRetryUntil,
  });
  await ctx.spool.enqueue({
    id,
    sender: '',
    routes: [{ routeId: route.id, recipients: [job.sender] }],
    body: Buffer.from(dsn, 'utf8'),
    client: { ip: '127.0.0.1', helo: ctx.hostname, user: null, tls: false },
    kind: 'dsn',
  });
  ctx.onRoute?.(route.id);
  await ctx.spool.track({
    type: 'dsn-sent',
    messageId: job.messageId,
    routeId: route.id,
    sender: '',
    recipients: [job.sender],
    reply: `${report.action} DSN ${id} about ${recipients.join(',')}`,
  });
  log.info(
    { event: 'delivery.dsn_queued', dsn: id, action: report.action, to: job.sender, recipients },
    `${report.action} DSN ${id} queued to ${job.sender}`,
  );
  return id;
}

/**
 * The DSN an operator's "delete with DSN" sends (the admin API's bounce hook): every pending
 * recipient failed with 5.0.0 and the operator's reason as the diagnostic.
 */
export function operatorBounce(ctx: BounceContext, log: Logger) {
  return async (job: DeliveryJob, reason: string): Promise<void> => {
    const body = (await ctx.spool.readBody(job.messageId)) ?? Buffer.alloc(0);
    await sendReport(ctx, log, job, body, {
      action: 'failed',
      recipients: job.recipients.map((recipient) => ({
        recipient,
        status: '5.0.0',
        diagnostic: { code: 550, text: `5.0.0 ${reason}` },
      })),
    });
  };
}
