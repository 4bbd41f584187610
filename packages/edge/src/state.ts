/** A connection's and a transaction's state (Haraka keeps the two apart; so do we). */
import type { Verdict } from '@moat/policy';
import type { Logger } from 'pino';

export interface Transaction {
  /** The queue id, chosen at MAIL FROM so Received: can name it. */
  readonly id: string;
  /** 1 for the first transaction of the session. */
  readonly seq: number;
  readonly sender: string;
  readonly accepted: Verdict[];
  readonly log: Logger;
}

export interface SessionState {
  readonly id: string;
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
}
