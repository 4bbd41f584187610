/** The data Moat keeps in Redis, as types shared by edge, delivery and admin. */

/** One BullMQ job: a message's recipients on one route. */
export interface DeliveryJob {
  readonly messageId: string;
  readonly routeId: string;
  /** Envelope sender; "" is the null sender <>. */
  readonly sender: string;
  /** Recipients still pending on this route (delivered and failed ones are removed). */
  readonly recipients: string[];
  /** When the edge accepted the message (ms). */
  readonly queuedAt: number;
  /** Delivery attempts made so far. */
  readonly attempts: number;
  /** 'dsn': a bounce Moat wrote; a DSN that fails is dropped, never bounced. */
  readonly kind: 'message' | 'dsn';
  /** The last remote answer, for operators and DSNs. */
  readonly lastReply?: { readonly code: number; readonly text: string; readonly host?: string } | undefined;
  /** Whether a delay warning was sent. */
  readonly delayWarned?: boolean | undefined;
  /** RFC 3461 ENVID, passed through to DSNs. */
  readonly envid?: string | undefined;
  /**
   * Every line ending of the stored body is CRLF: the edge made it so before it wrote the
   * body, so the delivery does not look for bare CR or LF again. Absent: the delivery checks.
   */
  readonly crlf?: true | undefined;
}

/** Where a message came from. */
export interface ClientFacts {
  readonly ip: string;
  readonly helo: string;
  readonly user: string | null;
  readonly tls: boolean;
}

export interface MessageMeta {
  readonly id: string;
  readonly sender: string;
  readonly size: number;
  readonly receivedAt: number;
  readonly client: ClientFacts;
  /** Route id → its job id and recipients, as accepted. */
  readonly routes: readonly {
    readonly routeId: string;
    readonly jobId: string;
    readonly recipients: readonly string[];
  }[];
  readonly kind: 'message' | 'dsn';
}

export type TrackingEventType =
  | 'received'
  | 'deferred'
  | 'delivered'
  | 'bounced'
  | 'expired'
  | 'dsn-sent'
  | 'dsn-dropped'
  | 'deleted'
  | 'held'
  | 'released'
  | 'rejected';

/** One filter's verdict on a message, as its tracking record shows it. */
export interface FilterVerdictRecord {
  readonly filter: string;
  /** accept, tag, tempfail, reject, or error. */
  readonly verdict: string;
  readonly ms: number;
  /** What it found: { signature }, { action, score, symbols }, { spf, dkim, dmarc, arc }, { error }. */
  readonly result: Readonly<Record<string, unknown>>;
}

export interface TrackingEvent {
  readonly type: TrackingEventType;
  readonly messageId: string;
  readonly time?: number;
  readonly routeId?: string;
  readonly sender?: string;
  readonly recipients?: readonly string[];
  /** Remote host and reply, for deferred/delivered/bounced. */
  readonly host?: string;
  readonly reply?: string;
  readonly node?: string;
  readonly size?: number;
  readonly client?: string;
  /** received (and rejected by a filter): every filter's verdict. */
  readonly filters?: readonly FilterVerdictRecord[];
}
