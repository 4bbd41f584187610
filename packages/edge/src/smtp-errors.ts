/**
 * The one place a Moat reply becomes what smtp-server expects: an Error with `responseCode`
 * whose message starts with the enhanced status code (Moat's patch of smtp-server keeps it).
 * Anything that is not a deliberate reply is an internal failure: 451 4.3.0, never smtp-server's
 * default 550 — a Redis hiccup must never bounce mail.
 */
import { Replies, type Reply, replyText } from '@moat/policy';
import { SpoolFullError } from '@moat/spool';

/** A deliberate SMTP answer, thrown from a session handler. */
export class SmtpReplyError extends Error {
  override readonly name = 'SmtpReplyError';
  readonly responseCode: number;

  constructor(
    readonly reply: Reply,
    /** Why, as a stable code for logs and metrics labels ("relay-denied", "message-too-big"). */
    readonly reason: string = 'refused',
    /** Free text for the log line (never sent to the client, never a metrics label). */
    readonly detail?: string,
  ) {
    super(replyText(reply));
    this.responseCode = reply.code;
  }
}

/** Map any error thrown by a handler to the reply the client gets. */
export function toSmtpError(err: unknown): SmtpReplyError {
  if (err instanceof SmtpReplyError) return err;
  if (err instanceof SpoolFullError) return new SmtpReplyError(Replies.storageFull, 'redis-memory');
  return new SmtpReplyError(Replies.tempFailure, 'internal');
}

/** Whether the error is an internal failure (worth an error log line) rather than a policy answer. */
export function isInternal(err: unknown): boolean {
  return !(err instanceof SmtpReplyError) && !(err instanceof SpoolFullError);
}
