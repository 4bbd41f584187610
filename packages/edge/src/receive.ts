/**
 * The DATA phase of a transaction: read the message within the size limit, make its line
 * endings canonical, refuse loops, add Message-ID/Date to submissions that lack them, run the
 * filters, prepend Received:, and make it durable (body once, one job per route). Only when
 * this resolves does the session answer 250.
 */
import { composeReceived, groupByRoute, isTrusted, Replies, rfc5322Date } from '@moat/policy';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { readData } from './data.js';
import { runFilters } from './filters.js';
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
  const { config } = deps;
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
  let body = canonicalLineEndings(read.body);
  const facts = headerFacts(body);
  if (facts.received > config.smtp.maxReceivedHeaders) {
    throw new SmtpReplyError(Replies.loopDetected, 'loop', `${facts.received} Received: headers`);
  }
  const ctx = { clientIp: state.clientIp, user: state.user };
  const now = new Date();
  const added: string[] = [];
  if (isTrusted(deps.policy, ctx)) {
    // Submissions from inside that lack them get Message-ID and Date (RFC 6409 §8).
    if (!facts.hasMessageId) added.push(`Message-ID: <${txn.id}@${config.hostname}>\r\n`);
    if (!facts.hasDate) added.push(`Date: ${rfc5322Date(now)}\r\n`);
  }
  const recipients = txn.accepted.flatMap((v) => (v.action === 'accept' ? [v.recipient.address] : []));
  const filtered = await runFilters(deps.filters, {
    queueId: txn.id,
    sender: txn.sender,
    recipients,
    clientIp: state.clientIp,
    user: state.user,
    body,
  });
  if (filtered.verdict.action !== 'accept') {
    txn.log.info({
      event: 'edge.filtered',
      filter: filtered.filter,
      action: filtered.verdict.action,
      reason: filtered.verdict.reason,
    });
    throw new SmtpReplyError(
      filtered.verdict.reply,
      `filter:${filtered.filter ?? 'unknown'}`,
      filtered.verdict.reason,
    );
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
  body = Buffer.concat([Buffer.from(received + filtered.headers.join('') + added.join(''), 'latin1'), body]);
  const routes = [...groupByRoute(txn.accepted).values()].map((g) => ({
    routeId: g.route.id,
    recipients: g.recipients,
  }));
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
  return txn.id;
}
