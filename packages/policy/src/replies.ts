/**
 * Every SMTP reply Moat itself composes, as typed values from one registry
 * (documented in docs/reply-codes.md; a test keeps the two in step).
 */

export interface Reply {
  /** Basic reply code (RFC 5321 §4.2). */
  readonly code: number;
  /** Enhanced status code (RFC 3463). */
  readonly enhanced: string;
  readonly text: string;
}

/** A reply value; the registry below, and the composed ones (session-checks.ts), are made with it. */
export const reply = (code: number, enhanced: string, text: string): Reply =>
  Object.freeze({ code, enhanced, text });

export const Replies = Object.freeze({
  senderOk: reply(250, '2.1.0', 'Sender ok'),
  recipientOk: reply(250, '2.1.5', 'Recipient ok'),
  relayDenied: reply(550, '5.7.1', 'Relaying denied'),
  badRecipientSyntax: reply(553, '5.1.3', 'Bad recipient address syntax'),
  badSenderSyntax: reply(553, '5.1.7', 'Bad sender address syntax'),
  tooManyRecipients: reply(452, '4.5.3', 'Too many recipients'),
  messageTooBig: reply(552, '5.3.4', 'Message size exceeds fixed limit'),
  loopDetected: reply(554, '5.4.6', 'Too many hops (mail loop detected)'),
  tempFailure: reply(451, '4.3.0', 'Temporary failure, please try again later'),
  storageFull: reply(452, '4.3.1', 'Insufficient system storage, please try again later'),
  tooManyConnections: reply(421, '4.7.0', 'Too many connections, try again later'),
  tooManyConnectionsFromYou: reply(421, '4.7.0', 'Too many connections from your address, try again later'),
  shuttingDown: reply(421, '4.3.2', 'Service shutting down, try again later'),
  authFailed: reply(535, '5.7.8', 'Authentication credentials invalid'),
  filterRejected: reply(554, '5.7.1', 'Message rejected by content filter'),
  filterDeferred: reply(451, '4.7.1', 'Message deferred by content filter, try again later'),
  virusFound: reply(554, '5.7.1', 'Message rejected, virus found'),
  spamRejected: reply(550, '5.7.1', 'Message rejected as spam'),
  dmarcRejected: reply(550, '5.7.1', 'Message rejected by the DMARC policy of the From domain'),
  spfFailed: reply(550, '5.7.23', 'SPF validation failed'),
  tooBigToScan: reply(552, '5.3.4', 'Message too big to be scanned for viruses'),
  scannerUnavailable: reply(451, '4.7.1', 'Content scanner unavailable, try again later'),
});

export type ReplyName = keyof typeof Replies;

/** The reply to end of DATA once the message is durably queued. */
export function queued(queueId: string): Reply {
  return reply(250, '2.0.0', `Ok: queued as ${queueId}`);
}

/**
 * A registry reply with what it is about appended: "Message rejected, virus found: Eicar". The
 * detail comes from outside (a scanner's signature name, a domain), so only printable ASCII
 * survives, at most 200 characters: nothing can break the reply line.
 */
export function withDetail(r: Reply, detail: string): Reply {
  const clean = detail
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200)
    .trim();
  return clean === '' ? r : reply(r.code, r.enhanced, `${r.text}: ${clean}`);
}

/** The reply's text as it goes on the wire, without the code: "5.7.1 Relaying denied". */
export function replyText(r: Reply): string {
  return `${r.enhanced} ${r.text}`;
}

export function isPermanent(r: Pick<Reply, 'code'>): boolean {
  return r.code >= 500;
}

export function isTransient(r: Pick<Reply, 'code'>): boolean {
  return r.code >= 400 && r.code < 500;
}
