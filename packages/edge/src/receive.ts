/**
 * The DATA phase of a transaction: read the message within the size limit, make its line
 * endings canonical, refuse loops, add Message-ID/Date to submissions that lack them, run the
 * filters, prepend Received:, and make it durable (body once, one job per route). Only when
 * this resolves does the session answer 250.
 */
import { composeReceived, groupByRoute, isTrusted, Replies, rfc5322Date } from '@moat/policy';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { ownsItsMemory, prepend, readData } from './data.js';
import { type FilterOutcome, runFilters, type Signer } from './filters.js';
import { editHeaders } from './header-edits.js';
import { canonicalLineEndings, headerFacts } from './message.js';
import { SmtpReplyError } from './smtp-errors.js';
import type { HandlerDeps, SessionState } from './state.js';

/** DATA: bounded read, canonical line endings, loop check, Received:, filters, durable queue. Resolves with the queue id. */
export async function receiveMessage(
  deps: HandlerDeps,
  state: SessionState,
  stream: SMTPServerDataStream,
  session: SMTPServerSession,
): Promise<string> {
  const { config, policy, filters, signer } = state.settings;
  const txn = state.txn;
  const read = await readData(stream, config.smtp.maxMessageSize);
  if (txn === null) throw new SmtpReplyError(Replies.tempFailure, 'no-transaction');
  if (read.body === null || stream.sizeExceeded) {
    throw new SmtpReplyError(
      Replies.messageTooBig,
      'message-too-big',
      `${read.size} > ${config.smtp.maxMessageSize} bytes`,
    );
  }
  deps.counters?.inc('received');
  // Back-pressure at the end of DATA too: the sessions that passed MAIL before Redis filled up.
  if (deps.memory?.full) throw new SmtpReplyError(Replies.storageFull, 'redis-memory');
  let body = canonicalLineEndings(read.body);
  const facts = headerFacts(body);
  if (facts.received > config.smtp.maxReceivedHeaders) {
    throw new SmtpReplyError(Replies.loopDetected, 'loop', `${facts.received} Received: headers`);
  }
  const ctx = { clientIp: state.clientIp, user: state.user };
  const now = new Date();
  const added: string[] = [];
  const trusted = isTrusted(policy, ctx);
  if (trusted) {
    // Submissions from inside that lack them get Message-ID and Date (RFC 6409 §8).
    if (!facts.hasMessageId) added.push(`Message-ID: <${txn.id}@${config.hostname}>\r\n`);
    if (!facts.hasDate) added.push(`Date: ${rfc5322Date(now)}\r\n`);
  }
  const recipients = txn.accepted.flatMap((v) => (v.action === 'accept' ? [v.recipient.address] : []));
  const helo = session.hostNameAppearsAs ?? '';
  const filtered =
    filters.length === 0
      ? null
      : await runFilters(filters, {
          queueId: txn.id,
          direction: trusted ? 'outbound' : 'inbound',
          sender: txn.sender,
          recipients,
          clientIp: state.clientIp,
          helo,
          user: state.user,
          body,
        });
  if (filtered) {
    countFilters(deps, filtered);
    const { decision } = filtered;
    // A filter that failed open (onError: accept) is an outage an operator must see.
    const level = filtered.reports.some((r) => r.verdict === 'error') ? 'warn' : 'info';
    txn.log[level]({
      event: 'edge.filtered',
      action: decision.action,
      filter: filtered.filter,
      reason: decision.reason,
      filters: filtered.reports.map((r) => ({
        filter: r.filter,
        verdict: r.verdict,
        ms: Math.round(r.seconds * 1000),
        reason: r.reason,
      })),
    });
    if (decision.action === 'reject' || decision.action === 'tempfail') {
      // The refusal is the sender's to handle (no bounce from us); the record says why.
      deps.spool
        .track({
          type: 'rejected',
          messageId: txn.id,
          sender: txn.sender,
          recipients,
          client: state.clientIp,
          reply: `${decision.reply?.code ?? 451} ${decision.reason ?? ''}`.trim(),
          filters: verdictRecords(filtered),
        })
        .catch(() => {});
      throw new SmtpReplyError(
        decision.reply ?? Replies.filterDeferred,
        `filter:${filtered.filter ?? 'unknown'}`,
        decision.reason,
      );
    }
    body = editHeaders(body, {
      remove: filtered.removeHeader,
      subject: decision.action === 'tag' ? (decision.subject ?? null) : null,
    });
  }
  const tls = session.secure && session.tlsOptions ? session.tlsOptions : null;
  const received = composeReceived({
    helo: session.hostNameAppearsAs ?? '',
    clientHostname:
      config.smtp.reverseDns && session.clientHostname && !session.clientHostname.startsWith('[')
        ? session.clientHostname
        : null,
    clientIp: state.clientIp,
    esmtp: session.openingCommand === 'EHLO',
    tls: tls ? { protocol: tls.version ?? 'TLS', cipher: tls.name } : null,
    user: state.user,
    by: config.hostname,
    queueId: txn.id,
    recipients,
    date: now,
  });
  const filterHeaders = filtered ? filtered.decision.headers.join('') : '';
  // The fields Moat adds are made canonical as well (a scanner's header value, a HELO), so the
  // whole stored body has CRLF endings only and the delivery need not look again (crlf below).
  const prefix = canonicalLineEndings(Buffer.from(received + filterHeaders + added.join(''), 'latin1'));
  body = prepend(prefix, body);
  if (trusted && signer) body = await signOutbound(deps, signer, txn, body);
  const routes = [...groupByRoute(txn.accepted).values()].map((g) => ({
    routeId: g.route.id,
    recipients: g.recipients,
  }));
  // Once more after the filters, counting this message in: sessions ending DATA at once must
  // not all see room for one.
  if (deps.memory?.full) throw new SmtpReplyError(Replies.storageFull, 'redis-memory');
  deps.memory?.note(body.length);
  await deps.spool.enqueue({
    id: txn.id,
    sender: txn.sender,
    routes,
    body,
    client: {
      ip: state.clientIp,
      helo: session.hostNameAppearsAs ?? '',
      user: state.user,
      tls: tls !== null,
    },
    envid: session.envelope.dsn?.envid ?? undefined,
    crlf: true,
    ...(filtered ? { filters: verdictRecords(filtered) } : {}),
  });
  txn.log.info(
    {
      event: 'edge.queued',
      size: body.length,
      sender: txn.sender,
      rcpts: recipients.length,
      routes: routes.map((r) => r.routeId),
    },
    'queued',
  );
  // The last use of the body here: it may move to another thread now.
  try {
    deps.onQueued?.(txn.id, body, ownsItsMemory(body));
  } catch (err) {
    txn.log.warn({ event: 'edge.handoff_failed', err }, 'could not hand the body over; delivery reads it');
  }
  return txn.id;
}

function verdictRecords(outcome: FilterOutcome) {
  return outcome.reports.map((r) => ({
    filter: r.filter,
    verdict: r.verdict,
    ms: Math.round(r.seconds * 10_000) / 10,
    result: r.result,
  }));
}

function countFilters(deps: HandlerDeps, outcome: FilterOutcome): void {
  for (const r of outcome.reports) {
    deps.counters?.inc('filterVerdicts', { filter: r.filter, verdict: r.verdict });
    deps.counters?.observe('filterDuration', { filter: r.filter }, r.seconds);
  }
}

/** DKIM-sign an outbound message once, as it is queued: retries send these same bytes. */
async function signOutbound(
  deps: HandlerDeps,
  signer: Signer,
  txn: NonNullable<SessionState['txn']>,
  body: Buffer,
): Promise<Buffer> {
  try {
    const signed = await signer.sign(body);
    if (signed === null) return body;
    deps.counters?.inc('dkimSigned', { domain: signed.domain, result: 'signed' });
    txn.log.debug({ event: 'edge.dkim_signed', domain: signed.domain, selectors: signed.selectors });
    return prepend(canonicalLineEndings(Buffer.from(signed.headers, 'latin1')), body);
  } catch (err) {
    deps.counters?.inc('dkimSigned', { domain: 'unknown', result: 'failed' });
    txn.log.error({ event: 'edge.dkim_failed', err }, 'DKIM signing failed');
    if (signer.onError === 'accept') return body;
    throw new SmtpReplyError(Replies.scannerUnavailable, 'dkim-failed', (err as Error).message);
  }
}
