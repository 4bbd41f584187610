/**
 * The job processor: read the body, make one attempt, record what each recipient's answer
 * was, then finish the job: DSN for the failed ones, back to the queue (only the still-pending
 * recipients) on the retry schedule, expiry at the end of the queue lifetime, and release of
 * the body when nothing on this route is pending any more.
 */
import { type DsnRecipient, delayWarningDue, nextRetry, type Route } from '@moat/policy';
import {
  type Counters,
  type DeliveryJob,
  type DeliveryJobHandle,
  deferJob,
  lazyChild,
  type Spool,
} from '@moat/spool';
import type { Logger } from 'pino';
import { type AttemptContext, attemptDelivery, type RecipientResult } from './attempt.js';
import type { BodyCache } from './body-cache.js';
import { type BounceContext, sendReport } from './bounces.js';

export interface RetrySettings {
  readonly schedule: readonly number[];
  readonly lifetime: number;
  readonly delayWarning: number | null;
}

export interface ProcessorContext {
  readonly spool: Spool;
  readonly attempt: AttemptContext;
  readonly bounces: BounceContext;
  readonly retry: RetrySettings;
  readonly routeOf: (routeId: string) => Route;
  readonly log: Logger;
  /** Cluster-wide metrics: deliveries by route and result, delivery latency. */
  readonly counters?: Counters | undefined;
  /** Bodies this process queued itself, read before Redis (`moat start`). */
  readonly bodies?: BodyCache | undefined;
}

/** How long a job waits when its host had no free connection (not an attempt). */
const BUSY_DELAY_MS = 500;

export type Processor = (job: DeliveryJobHandle, token: string | undefined) => Promise<void>;

export function makeProcessor(ctx: ProcessorContext): Processor {
  return async (job, token) => {
    const data = job.data;
    const log = lazyChild(ctx.log, () => ({ messageId: data.messageId, route: data.routeId, job: job.id }));
    try {
      await processJob(ctx, log, job, token);
    } catch (err) {
      if (err instanceof Error && err.name === 'DelayedError') throw err;
      log.error({ event: 'delivery.error', err }, 'delivery failed unexpectedly, trying again later');
      const delay = ctx.retry.schedule[0] ?? 60_000;
      await deferJob(job, token, delay, { ...data, attempts: data.attempts + 1 });
    }
  };
}

async function processJob(
  ctx: ProcessorContext,
  log: Logger,
  job: DeliveryJobHandle,
  token: string | undefined,
): Promise<void> {
  const data = job.data;
  const jobId = job.id ?? '';
  const body = ctx.bodies?.get(data.messageId) ?? (await ctx.spool.readBody(data.messageId));
  if (body === null) {
    log.warn({ event: 'delivery.body_missing' }, 'the message is gone (deleted?); nothing to deliver');
    await ctx.spool.release(data.messageId, jobId);
    return;
  }
  const route = ctx.routeOf(data.routeId);
  const results = await attemptDelivery(
    { ...ctx.attempt, log },
    { route, sender: data.sender, recipients: data.recipients, body, crlf: data.crlf },
  );
  // The tracking events go out now and are awaited with the release at the end: one round
  // trip fewer per message, same order on the connection. They are best effort: the mail went
  // where it went, and failing the job for its log entry would send it again.
  const tracked = record(ctx.spool, log, data, results, ctx.counters).catch((err: unknown) =>
    log.warn({ event: 'delivery.track_failed', err }, 'could not write the tracking event'),
  );

  const now = Date.now();
  const of = (o: RecipientResult['outcome']) => results.filter((r) => r.outcome === o);
  const [failed, deferred, busy] = [of('failed'), of('deferred'), of('busy')];
  const attempts = data.attempts + (busy.length < results.length ? 1 : 0);
  const bounce = failed.map(dsnRecipient);
  let pending = [...deferred, ...busy];
  let delay = BUSY_DELAY_MS + Math.floor(Math.random() * BUSY_DELAY_MS);
  if (pending.length > 0) {
    const decision =
      deferred.length > 0
        ? nextRetry({ attemptsMade: attempts, queuedAt: data.queuedAt, now, ...ctx.retry })
        : now >= data.queuedAt + ctx.retry.lifetime
          ? ({ action: 'expire' } as const)
          : ({ action: 'retry', delayMs: delay } as const);
    if (decision.action === 'expire') {
      const expired = pending.map((r) => r.recipient);
      log.warn({ event: 'delivery.expired', recipients: expired, attempts }, 'queue lifetime over, bouncing');
      ctx.counters?.inc('deliveries', { route: data.routeId, result: 'expired' }, expired.length);
      await ctx.spool.track({
        type: 'expired',
        messageId: data.messageId,
        routeId: data.routeId,
        recipients: expired,
      });
      bounce.push(...pending.map(dsnRecipient));
      pending = [];
    } else {
      delay = busy.length > 0 ? Math.min(delay, decision.delayMs) : decision.delayMs;
    }
  }
  if (bounce.length > 0)
    await sendReport(ctx.bounces, log, data, body, { action: 'failed', recipients: bounce });

  if (pending.length > 0) {
    let delayWarned = data.delayWarned === true;
    if (deferred.length > 0 && delayWarningDue(data.queuedAt, now, ctx.retry.delayWarning, delayWarned)) {
      delayWarned = true;
      if (data.kind === 'message') {
        await sendReport(ctx.bounces, log, data, body, {
          action: 'delayed',
          recipients: deferred.map(dsnRecipient),
          willRetryUntil: new Date(data.queuedAt + ctx.retry.lifetime),
        });
      }
    }
    const last = deferred.at(-1);
    const next: DeliveryJob = {
      ...data,
      recipients: pending.map((r) => r.recipient),
      attempts,
      delayWarned,
      lastReply: last
        ? { code: last.reply?.code ?? 0, text: last.text, ...(last.host ? { host: last.host } : {}) }
        : data.lastReply,
    };
    log.info(
      { event: 'delivery.retry_scheduled', recipients: next.recipients, attempts, delayMs: delay },
      `${next.recipients.length} recipient(s) pending, next attempt in ${delay} ms`,
    );
    await deferJob(job, token, delay, next);
  }
  const [, deleted] = await Promise.all([tracked, ctx.spool.release(data.messageId, jobId)]);
  if (deleted) ctx.bodies?.delete(data.messageId);
}

function dsnRecipient(r: RecipientResult): DsnRecipient {
  return { recipient: r.recipient, status: r.status, remoteMta: r.hostName, diagnostic: r.reply };
}

const EVENTS = {
  delivered: { type: 'delivered', event: 'delivery.delivered', level: 'info' },
  deferred: { type: 'deferred', event: 'delivery.deferred', level: 'warn' },
  failed: { type: 'bounced', event: 'delivery.bounced', level: 'warn' },
} as const;

/** One tracking event and one log line per (outcome, host, answer). */
async function record(
  spool: Spool,
  log: Logger,
  job: DeliveryJob,
  results: readonly RecipientResult[],
  counters?: Counters,
) {
  const tracked: Promise<void>[] = [];
  const groups = new Map<string, RecipientResult[]>();
  for (const r of results) {
    const key = JSON.stringify([r.outcome, r.host ?? '', r.text]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const group of groups.values()) {
    const first = group[0];
    if (!first) continue;
    const recipients = group.map((r) => r.recipient);
    if (first.outcome === 'busy') {
      log.debug({ event: 'delivery.busy', host: first.host, recipients }, first.text);
      continue;
    }
    const e = EVENTS[first.outcome];
    counters?.inc('deliveries', { route: job.routeId, result: e.type }, recipients.length);
    if (first.outcome === 'delivered') {
      counters?.observe('deliveryLatency', { route: job.routeId }, (Date.now() - job.queuedAt) / 1000);
    }
    if (log.isLevelEnabled(e.level)) {
      log[e.level](
        { event: e.event, host: first.host, recipients, status: first.status, reply: first.text },
        `${first.outcome}: ${recipients.join(', ')}${first.host ? ` via ${first.host}` : ''}: ${first.text}`,
      );
    }
    tracked.push(
      spool.track({
        type: e.type,
        messageId: job.messageId,
        routeId: job.routeId,
        sender: job.sender,
        recipients,
        reply: first.text,
        ...(first.host ? { host: first.host } : {}),
      }),
    );
  }
  await Promise.all(tracked);
}
