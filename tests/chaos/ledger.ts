/**
 * The chaos suite's load driver and ledger. `startLoad` runs several concurrent SMTP clients
 * against the edges; each message has its own Message-ID; a refusal (4xx) or a cut connection is
 * retried later on another edge, a bounded number of times, as an MTA with two MX hosts would. The
 * load is bounded in messages and in time and stops by itself. The ledger records every attempt
 * (which edge, the reply that ended it, at which step, when), and after the drain compares what
 * was acknowledged (250 after DATA) with what the sinks received, by Message-ID:
 *
 *   sent / acknowledged / delivered / duplicates / lost
 *
 * where lost = acknowledged but never delivered. A scenario fails on lost > 0.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { dotStuff, RawSmtp, type SinkMessage } from '@moat/testkit';

/** The step at which an attempt ended. */
export type Step = 'connect' | 'greeting' | 'ehlo' | 'mail' | 'rcpt' | 'data' | 'end-of-data';

export interface Attempt {
  readonly messageId: string;
  /** The edge's port. */
  readonly port: number;
  readonly started: number;
  /** When the end of DATA was written; NaN when the attempt ended before it. */
  readonly dataSent: number;
  readonly ended: number;
  readonly step: Step;
  /** The reply's code ("250", "451", "452", "421"…), or "cut" when the connection failed. */
  readonly code: string;
  readonly text: string;
}

/** An acknowledgement: 250 to the end of DATA. */
export const acknowledges = (a: Attempt) => a.step === 'end-of-data' && a.code === '250';
/** A temporary refusal or a connection that failed: the client tries again later. */
export const refuses = (a: Attempt) => a.code.startsWith('4') || a.code === 'cut';

export interface Tally {
  /** Messages the clients started to send. */
  readonly sent: number;
  readonly acknowledged: number;
  /** Distinct messages of this ledger the sinks received. */
  readonly delivered: number;
  /** Receptions beyond the first of the same message. */
  readonly duplicates: number;
  /** Acknowledged, never delivered. */
  readonly lost: number;
  readonly lostIds: readonly string[];
  /** Delivered though no attempt was acknowledged (stored, then the reply was cut or late): not a loss. */
  readonly deliveredUnacknowledged: number;
  /** Attempts refused or cut, over all messages. */
  readonly refusals: number;
}

export class Ledger {
  readonly attempts: Attempt[] = [];
  readonly #messages = new Set<string>();
  readonly #acknowledged = new Set<string>();

  /** A message the clients start to send. */
  begin(messageId: string): void {
    if (this.#messages.has(messageId)) throw new Error(`Message-ID ${messageId} sent twice`);
    this.#messages.add(messageId);
  }

  record(attempt: Attempt): void {
    if (!this.#messages.has(attempt.messageId)) throw new Error(`${attempt.messageId} was never begun`);
    this.attempts.push(attempt);
    if (acknowledges(attempt)) this.#acknowledged.add(attempt.messageId);
  }

  get sent(): number {
    return this.#messages.size;
  }

  get acknowledged(): number {
    return this.#acknowledged.size;
  }

  /** Compares the acknowledged messages with the Message-IDs the sinks received (one per reception). */
  tally(received: Iterable<string>): Tally {
    const counts = new Map<string, number>();
    for (const id of received) if (this.#messages.has(id)) counts.set(id, (counts.get(id) ?? 0) + 1);
    const lostIds = [...this.#acknowledged].filter((id) => !counts.has(id));
    let duplicates = 0;
    for (const n of counts.values()) duplicates += n - 1;
    return {
      sent: this.sent,
      acknowledged: this.acknowledged,
      delivered: counts.size,
      duplicates,
      lost: lostIds.length,
      lostIds,
      deliveredUnacknowledged: [...counts.keys()].filter((id) => !this.#acknowledged.has(id)).length,
      refusals: this.attempts.filter(refuses).length,
    };
  }

  /**
   * Waits (bounded) until every acknowledged message was received at least once, then tallies.
   * `received` is asked again on each poll (sinks keep receiving meanwhile).
   */
  async drain(received: () => Iterable<string>, timeoutMs: number): Promise<Tally> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const tally = this.tally(received());
      if (tally.lost === 0 || Date.now() > deadline) return tally;
      await sleep(200);
    }
  }

  /**
   * The outage after `since`: the first refused attempt that ended after it, and the first
   * acknowledgement whose end of DATA was written after that refusal.
   */
  outage(since: number): { firstRefusal: number; firstAcceptance: number; ms: number } | null {
    const refusal = this.attempts
      .filter((a) => refuses(a) && a.ended >= since)
      .reduce((min, a) => Math.min(min, a.ended), Number.POSITIVE_INFINITY);
    if (!Number.isFinite(refusal)) return null;
    const acceptance = this.attempts
      .filter((a) => acknowledges(a) && a.dataSent > refusal)
      .reduce((min, a) => Math.min(min, a.ended), Number.POSITIVE_INFINITY);
    return { firstRefusal: refusal, firstAcceptance: acceptance, ms: acceptance - refusal };
  }

  /** "451@end-of-data: 12, cut@connect: 3" for the attempts that ended in [from, to]. */
  replies(from = 0, to = Number.POSITIVE_INFINITY): string {
    const counts = new Map<string, number>();
    for (const a of this.attempts) {
      if (a.ended < from || a.ended > to) continue;
      const key = `${a.code}@${a.step}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts.entries()]
      .sort((x, y) => y[1] - x[1])
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ');
  }
}

/** The one line each scenario prints. */
export function formatTally(scenario: string, t: Tally): string {
  return (
    `${scenario}: sent ${t.sent} / acknowledged ${t.acknowledged} / delivered ${t.delivered} / ` +
    `duplicates ${t.duplicates} / lost ${t.lost}` +
    ` (refused or cut attempts ${t.refusals}; delivered though unacknowledged ${t.deliveredUnacknowledged})`
  );
}

/** Throws, naming some of them, when anything acknowledged was not delivered. */
export function assertNothingLost(scenario: string, t: Tally): void {
  if (t.lost > 0)
    throw new Error(
      `${scenario}: ${t.lost} acknowledged message(s) never delivered: ${t.lostIds.slice(0, 10).join(', ')}`,
    );
}

/** The Message-ID of a received message (the first one in its header), or null. */
export function messageIdOf(raw: Buffer): string | null {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const header = end < 0 ? text : text.slice(0, end);
  return /^Message-ID:[ \t]*<([^>\r\n]+)>/im.exec(header)?.[1] ?? null;
}

/** Message-IDs of everything these sinks received, one per reception. */
export function receivedIds(sinks: readonly { readonly messages: readonly SinkMessage[] }[]): string[] {
  const ids: string[] = [];
  for (const sink of sinks) {
    for (const m of sink.messages) {
      const id = messageIdOf(m.raw);
      if (id) ids.push(id);
    }
  }
  return ids;
}

export interface LoadOptions {
  /** Goes into every Message-ID (`<name>-<n>.<run>@chaos.test`). */
  readonly name: string;
  /** The edges' ports, asked before each attempt. */
  readonly ports: () => readonly number[];
  readonly clients: number;
  /** No more messages than this… */
  readonly maxMessages: number;
  /** …and none started after this long. */
  readonly durationMs: number;
  /** Retries of a message already started end this long after `durationMs` (default 15 s). */
  readonly graceMs?: number;
  /** Tries per message, counting the first; the delay between them. */
  readonly retry: { readonly attempts: number; readonly delayMs: number };
  /** A client's pause between two messages (default 0). */
  readonly pauseMs?: number;
  /** Body size in bytes, roughly (default 2 KB). */
  readonly bodyBytes?: number;
  readonly sender?: string;
  /** The recipient of message n (default user<n % 50>@example.com). */
  readonly recipient?: (n: number) => string;
  /** Bound on each wait for a reply (default 15 s, past redis.timeout). */
  readonly replyTimeoutMs?: number;
}

export interface Load {
  readonly ledger: Ledger;
  /** Resolves when every client has stopped. */
  readonly done: Promise<void>;
  /** No new message and no new retry; attempts under way finish. */
  stop(): void;
}

export function startLoad(opts: LoadOptions): Load {
  const ledger = new Ledger();
  const run = Date.now().toString(36);
  const started = Date.now();
  const newUntil = started + opts.durationMs;
  const retryUntil = newUntil + (opts.graceMs ?? 15_000);
  const bodyBytes = opts.bodyBytes ?? 2048;
  const recipient = opts.recipient ?? ((n: number) => `user${n % 50}@example.com`);
  let next = 0;
  let stopped = false;

  const client = async (c: number) => {
    while (!stopped && next < opts.maxMessages && Date.now() < newUntil) {
      const n = next++;
      const messageId = `${opts.name}-${n}.${run}@chaos.test`;
      ledger.begin(messageId);
      const message = composeMessage(messageId, opts.name, n, bodyBytes);
      for (let attempt = 0; attempt < opts.retry.attempts; attempt++) {
        if (attempt > 0) {
          await sleep(opts.retry.delayMs);
          if (stopped || Date.now() > retryUntil) break;
        }
        // Each client has its home edge and tries the next one after a failure, as an MTA
        // goes down its MX list.
        const ports = opts.ports();
        const port = ports[(c + attempt) % ports.length] ?? 0;
        const result = await transaction(port, {
          messageId,
          sender: opts.sender ?? 'sender@elsewhere.test',
          recipient: recipient(n),
          message,
          timeoutMs: opts.replyTimeoutMs ?? 15_000,
        });
        ledger.record(result);
        if (acknowledges(result) || result.code.startsWith('5')) break;
      }
      if (opts.pauseMs) await sleep(opts.pauseMs);
    }
  };
  const done = Promise.all(Array.from({ length: opts.clients }, (_, c) => client(c))).then(() => {});
  return {
    ledger,
    done,
    stop() {
      stopped = true;
    },
  };
}

function composeMessage(messageId: string, name: string, n: number, bytes: number): Buffer {
  const line = `${name} message ${n} `.padEnd(76, 'x');
  const body = `${line}\r\n`.repeat(Math.max(1, Math.ceil(bytes / 78)));
  return dotStuff(
    Buffer.from(
      `From: <sender@elsewhere.test>\r\nTo: <user@example.com>\r\nSubject: ${name} ${n}\r\n` +
        `Message-ID: <${messageId}>\r\nDate: ${new Date().toUTCString()}\r\n\r\n${body}`,
      'latin1',
    ),
  );
}

interface Transaction {
  readonly messageId: string;
  readonly sender: string;
  readonly recipient: string;
  /** Dot-stuffed, ending with CRLF. */
  readonly message: Buffer;
  readonly timeoutMs: number;
}

/** One SMTP session for one message; never throws: the attempt says how it ended. */
async function transaction(port: number, t: Transaction): Promise<Attempt> {
  const started = Date.now();
  let dataSent = Number.NaN;
  let step: Step = 'connect';
  const end = (code: string, text: string): Attempt => ({
    messageId: t.messageId,
    port,
    started,
    dataSent,
    ended: Date.now(),
    step,
    code,
    text,
  });
  let c: RawSmtp | null = null;
  try {
    c = await RawSmtp.connect({ port, greeting: false, timeoutMs: t.timeoutMs });
    step = 'greeting';
    const exchange: [Step, string | null, string][] = [
      ['greeting', null, '220'],
      ['ehlo', 'EHLO client.chaos.test', '250'],
      ['mail', `MAIL FROM:<${t.sender}>`, '250'],
      ['rcpt', `RCPT TO:<${t.recipient}>`, '250'],
      ['data', 'DATA', '354'],
    ];
    for (const [at, command, expected] of exchange) {
      step = at;
      const reply = command === null ? await c.reply() : await c.cmd(command);
      if (!reply.startsWith(expected)) return end(reply.slice(0, 3), reply);
    }
    step = 'end-of-data';
    c.write(t.message);
    dataSent = Date.now();
    c.write('.\r\n');
    const reply = await c.reply();
    await c.quit({ wait: false });
    c = null; // half-closed: the server answers QUIT and hangs up
    return end(reply.slice(0, 3), reply);
  } catch (err) {
    return end('cut', (err as Error).message);
  } finally {
    c?.destroy();
  }
}
