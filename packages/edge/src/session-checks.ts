/**
 * The hook for the checks of the connection, MAIL and RCPT phases (DNS lists, rate limits,
 * recipient validation, greylisting): the edge opens one per session and asks it at each
 * phase; a refusal is a reply with a stable reason, anything thrown (Redis away) is 451. The
 * checks themselves are @moat/filters'; their decisions the policy core's.
 */
import type { Reply } from '@moat/policy';

export interface CheckRefusal {
  readonly reply: Reply;
  /** Stable machine code for logs and moat_messages_rejected_total: 'dnsbl', 'rate:client-messages', … */
  readonly reason: string;
  readonly detail?: string;
}

export interface SessionInfo {
  readonly id: string;
  readonly clientIp: string;
  /** An allow-listed client network (outbound.clients). */
  readonly allowListed: boolean;
}

export interface TransactionInfo {
  /** The SMTP AUTH user, or null. */
  readonly user: string | null;
  /** Envelope sender; '' is the null sender. */
  readonly sender: string;
  /** The client may relay (allow-listed or authenticated): outbound mail. */
  readonly trusted: boolean;
}

export interface SessionChecks {
  connect(): Promise<CheckRefusal | null>;
  mail(txn: TransactionInfo): Promise<CheckRefusal | null>;
  /** After the relay decision accepted the recipient. */
  rcpt(
    txn: TransactionInfo,
    recipient: { readonly address: string; readonly direction: 'inbound' | 'outbound' },
  ): Promise<CheckRefusal | null>;
  close(): void;
}

export interface SessionChecker {
  open(session: SessionInfo): SessionChecks;
}
