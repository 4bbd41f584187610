/** A connection's and a transaction's state (Haraka keeps the two apart; so do we). */
import type { MoatConfig, RelayPolicy, Verdict } from '@moat/policy';
import type { Counters, MemoryGuard, Spool } from '@moat/spool';
import type { Logger } from 'pino';
import type { Filter, Signer } from './filters.js';
import type { ConnectionLimiter } from './limits.js';
import type { SessionChecker, SessionChecks } from './session-checks.js';
import type { SmtpReplyError } from './smtp-errors.js';

export interface Transaction {
  /** The queue id, chosen at MAIL FROM so Received: can name it. */
  readonly id: string;
  /** 1 for the first transaction of the session. */
  readonly seq: number;
  readonly sender: string;
  readonly accepted: Verdict[];
  readonly log: Logger;
}

/**
 * What a config reload may change while the edge runs: a session takes the settings current
 * when it connects and keeps them to its end, so a reload takes effect for new sessions.
 */
export interface EdgeSettings {
  readonly config: Readonly<MoatConfig>;
  readonly policy: RelayPolicy;
  readonly filters: readonly Filter[];
  /** DKIM signing of outbound mail (null: none configured). */
  readonly signer: Signer | null;
  /** DNS lists, rate limits, recipient validation, greylisting (null: none). */
  readonly checker: SessionChecker | null;
}

export interface SessionState {
  readonly id: string;
  /** The edge's settings when the session started. */
  readonly settings: EdgeSettings;
  readonly clientIp: string;
  readonly log: Logger;
  /** Holds a connection-limit slot. */
  counted: boolean;
  user: string | null;
  txn: Transaction | null;
  txnCount: number;
  /** Replies refused in this session (policy rejections), for smtp.maxErrors. */
  errors: number;
  inData: boolean;
  /** The connection/MAIL/RCPT checks of this session (null: none configured). */
  checks: SessionChecks | null;
  /** The HELO name was looked at (smtp.rejectInvalidHelo). */
  heloChecked: boolean;
}

/**
 * Told of each message once it is durable and the edge is done with it. `movable`: the body's
 * memory is its own (data.ts ownsItsMemory), so the callee may transfer it to another thread
 * instead of copying it. A throw is caught and logged (edge.handoff_failed): delivery then
 * reads the body from Redis.
 */
export type QueuedHandler = (messageId: string, body: Buffer, movable: boolean) => void;

/** What the session handlers work with. */
export interface HandlerDeps {
  /** The settings now (a reload replaces them); each session keeps the ones it started with. */
  readonly settings: () => EdgeSettings;
  readonly spool: Spool;
  readonly log: Logger;
  readonly limiter: ConnectionLimiter;
  readonly memory?: MemoryGuard | undefined;
  readonly counters?: Counters | undefined;
  /** EdgeOptions.onQueued. */
  readonly onQueued?: QueuedHandler | undefined;
  readonly isShuttingDown: () => boolean;
  /** Close a session after too many errors (needs smtp-server's connection object). */
  readonly disconnect: (sessionId: string, reply: SmtpReplyError) => void;
}
