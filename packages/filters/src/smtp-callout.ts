/**
 * Recipient verification by SMTP callout to the route's smart host, like Postfix's
 * reject_unverified_recipient: ask the server that would take the message whether it takes
 * the recipient, then forget the transaction.
 *
 * One probe connection, opened on first use and reused: greeting 220, EHLO (HELO when EHLO is
 * refused), then per check `MAIL FROM:<>`, `RCPT TO:<address>`, `RSET`. Checks take turns on
 * it (a queue); the answer is given at the RCPT reply, the RSET is waited for before the next
 * check. After `idleMs` without a check, and on close(), the probe says QUIT.
 *
 * RCPT 2xx → 'known'; 5xx → 'unknown' (550/551/553 5.1.x "no such user", and any other 5xx
 * too: the smart host would refuse the message). Everything else throws a DaemonError naming
 * the server, which the caller answers with 450, never 550: a 4xx (greylisting, 452), a MAIL
 * that is not accepted, a connection that fails, closes or outlives the signal or timeoutMs.
 * After a failure the next check opens a fresh connection. STARTTLS is never asked for.
 */
import net from 'node:net';
import { DaemonError } from './daemon-socket.js';

export interface CalloutConfig {
  host: string;
  port: number;
  /** Moat's hostname, for EHLO. */
  helo: string;
  /** Bound on connecting and on each reply (the caller's signal bounds a check too). */
  timeoutMs: number;
  /** Close the probe connection after this many idle ms (default 30 s). */
  idleMs?: number;
}

export type CalloutStatus = 'known' | 'unknown';

export interface SmtpReply {
  code: number;
  /** The reply's lines without their codes, joined with "\n". */
  text: string;
}

const DEFAULT_IDLE_MS = 30_000;
/** A reply longer than this is not an SMTP server talking. */
const MAX_REPLY = 64 * 1024;

/**
 * Collects reply lines ("250-first", "250 last"; a bare "250" ends one too) into replies.
 * Throws on a line that is not a reply line.
 */
export class ReplyParser {
  #buffer = '';
  #lines: string[] = [];
  #code = '';

  /** Feeds received text; returns the replies it completed. */
  push(chunk: string): SmtpReply[] {
    this.#buffer += chunk;
    const replies: SmtpReply[] = [];
    for (let end = this.#buffer.indexOf('\n'); end >= 0; end = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, end).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(end + 1);
      const match = /^(\d{3})(?:([ -])(.*))?$/.exec(line);
      if (!match?.[1]) throw new Error(`not an SMTP reply line: ${JSON.stringify(line.slice(0, 100))}`);
      const [, code, separator, text = ''] = match;
      if (this.#lines.length > 0 && code !== this.#code)
        throw new Error(`reply line ${JSON.stringify(line.slice(0, 100))} inside a ${this.#code} reply`);
      this.#code = code;
      this.#lines.push(text);
      if (separator !== '-') {
        replies.push({ code: Number(code), text: this.#lines.join('\n') });
        this.#lines = [];
      }
    }
    if (this.#buffer.length + this.#lines.join('').length > MAX_REPLY) throw new Error('reply too long');
    return replies;
  }
}

/** One SMTP connection, one command at a time. */
class Probe {
  readonly #socket: net.Socket;
  readonly #name: string;
  readonly #timeoutMs: number;
  readonly #parser = new ReplyParser();
  readonly #replies: SmtpReply[] = [];
  #waiter: { resolve: (reply: SmtpReply) => void; reject: (err: Error) => void } | undefined;
  #failure: DaemonError | undefined;
  /** EHLO keywords, upper case. */
  extensions = new Set<string>();

  constructor(name: string, host: string, port: number, timeoutMs: number) {
    this.#name = name;
    this.#timeoutMs = timeoutMs;
    this.#socket = net.connect({ host, port });
    this.#socket.setEncoding('utf8');
    this.#socket.setNoDelay(true);
    this.#socket.on('data', (chunk: string) => {
      try {
        for (const reply of this.#parser.push(chunk)) this.#deliver(reply);
      } catch (err) {
        this.#fail(`protocol error: ${(err as Error).message}`);
      }
    });
    this.#socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(err.code ?? err.message));
    this.#socket.on('close', () => this.#fail('connection closed'));
  }

  /** Whether it can take a command (no failure, not closing). */
  get usable(): boolean {
    return this.#failure === undefined && !this.#socket.destroyed && this.#socket.writable;
  }

  /** The next reply (the greeting, first), within timeoutMs. */
  reply(): Promise<SmtpReply> {
    const queued = this.#replies.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<SmtpReply>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail('no reply in time'), this.#timeoutMs);
      this.#waiter = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  /** Sends one command line and waits for its reply. */
  command(line: string): Promise<SmtpReply> {
    if (this.#failure) return Promise.reject(this.#failure);
    this.#socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** QUIT, waiting (within timeoutMs) for the 221 or the close, then closes. Never rejects. */
  async quit(): Promise<void> {
    if (this.usable) await this.command('QUIT').catch(() => {});
    this.destroy();
  }

  destroy(reason = 'connection closed by Moat'): void {
    this.#fail(reason);
    this.#socket.destroy();
  }

  #deliver(reply: SmtpReply): void {
    // 421: the server is closing the connection (shutdown, idle timeout), whatever was asked.
    if (reply.code === 421) {
      this.#fail(`closing: 421 ${reply.text}`);
      this.#socket.end();
      return;
    }
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter.resolve(reply);
    else this.#replies.push(reply);
  }

  #fail(reason: string): void {
    this.#failure ??= new DaemonError(`${this.#name}: ${reason}`);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(this.#failure);
    if (reason === 'no reply in time') this.#socket.destroy();
  }
}

export class SmtpCallout {
  readonly #config: CalloutConfig;
  /** "smtp callout at host:port", the start of every error message. */
  readonly #name: string;
  #probe: Probe | undefined;
  /** The end of the queue: each check starts when the one before it is done. */
  #tail: Promise<void> = Promise.resolve();
  #idleTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(config: CalloutConfig) {
    this.#config = config;
    this.#name = `smtp callout at ${net.isIPv6(config.host) ? `[${config.host}]` : config.host}:${config.port}`;
  }

  /** Whether the smart host accepts RCPT TO:<address> (after MAIL FROM:<>). */
  verify(address: string, signal: AbortSignal): Promise<CalloutStatus> {
    if (this.#closed) return Promise.reject(new DaemonError(`${this.#name}: closed`));
    // No mailbox has a control character (RFC 5321), and CR LF would smuggle in a command.
    if (hasControlCharacter(address)) return Promise.resolve('unknown');
    const timedOut = () => new DaemonError(`${this.#name}: no answer in time`);
    if (signal.aborted) return Promise.reject(timedOut());
    return new Promise<CalloutStatus>((resolve, reject) => {
      let settled = false;
      const settle = (done: () => void) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        done();
      };
      // While queued, the check is dropped when its turn comes; while running, the probe is
      // closed (its state is unknown) and the next check opens a fresh one.
      const onAbort = () => settle(() => reject(timedOut()));
      signal.addEventListener('abort', onAbort, { once: true });
      const turn = this.#tail.then(async () => {
        if (settled) return;
        if (this.#closed) return settle(() => reject(new DaemonError(`${this.#name}: closed`)));
        clearTimeout(this.#idleTimer);
        const aborted = () => this.#probe?.destroy(`abandoned: no answer in time`);
        signal.addEventListener('abort', aborted, { once: true });
        try {
          await this.#check(address, (outcome) =>
            settle(() => (outcome instanceof DaemonError ? reject(outcome) : resolve(outcome))),
          );
        } catch (err) {
          this.#drop();
          settle(() => reject(err instanceof DaemonError ? err : new DaemonError(`${this.#name}: ${err}`)));
        } finally {
          signal.removeEventListener('abort', aborted);
          this.#armIdleTimer();
        }
      });
      this.#tail = turn.catch(() => {});
    });
  }

  /** Waits for the running check, says QUIT and closes; later checks throw. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    await this.#tail;
    const probe = this.#probe;
    this.#probe = undefined;
    await probe?.quit();
  }

  /**
   * MAIL FROM:<>, RCPT TO:<address>, RSET. The outcome goes to `answer` as soon as it is known
   * (the RCPT reply, or a refused MAIL); the RSET after it keeps the connection usable. Throws
   * when the connection fails (before or after the answer): then the probe is dropped.
   */
  async #check(address: string, answer: (outcome: CalloutStatus | DaemonError) => void): Promise<void> {
    const probe = await this.#connection();
    const utf8 = /[^\x20-\x7e]/.test(address) && probe.extensions.has('SMTPUTF8');
    const mail = await probe.command(`MAIL FROM:<>${utf8 ? ' SMTPUTF8' : ''}`);
    if (isPositive(mail)) {
      const rcpt = await probe.command(`RCPT TO:<${address}>`);
      if (isPositive(rcpt)) answer('known');
      else if (rcpt.code >= 500 && rcpt.code < 600) answer('unknown');
      else answer(this.#refused(`RCPT TO:<${address}>`, rcpt));
    } else {
      answer(this.#refused('MAIL FROM:<>', mail));
    }
    const rset = await probe.command('RSET');
    if (!isPositive(rset)) throw this.#refused('RSET', rset);
  }

  /** The probe, opened (greeting, EHLO or HELO) when there is none or it failed. */
  async #connection(): Promise<Probe> {
    if (this.#probe?.usable) return this.#probe;
    this.#drop();
    const { host, port, timeoutMs, helo } = this.#config;
    const probe = new Probe(this.#name, host, port, timeoutMs);
    this.#probe = probe;
    const greeting = await probe.reply();
    if (greeting.code !== 220) throw this.#refused('the greeting', greeting);
    let hello = await probe.command(`EHLO ${helo}`);
    if (isPositive(hello)) {
      const [, ...keywords] = hello.text.split('\n');
      probe.extensions = new Set(keywords.map((line) => line.split(' ')[0]?.toUpperCase() ?? ''));
    } else if (hello.code >= 500) {
      // Refused (502 not implemented, 500 unknown command): an old server, or EHLO turned off.
      hello = await probe.command(`HELO ${helo}`);
      if (!isPositive(hello)) throw this.#refused(`HELO ${helo}`, hello);
    } else {
      throw this.#refused(`EHLO ${helo}`, hello);
    }
    return probe;
  }

  #refused(what: string, reply: SmtpReply): DaemonError {
    return new DaemonError(
      `${this.#name}: ${what} answered ${reply.code} ${reply.text.split('\n').join(' / ')}`,
    );
  }

  /** Forgets the probe, closing its socket. */
  #drop(): void {
    this.#probe?.destroy();
    this.#probe = undefined;
  }

  #armIdleTimer(): void {
    clearTimeout(this.#idleTimer);
    if (this.#closed || !this.#probe) return;
    this.#idleTimer = setTimeout(() => {
      // The queue's turn, so that QUIT never interleaves with a check.
      this.#tail = this.#tail.then(async () => {
        if (this.#idleTimer !== timer) return; // a check came meanwhile and re-armed it
        const probe = this.#probe;
        this.#probe = undefined;
        await probe?.quit();
      });
    }, this.#config.idleMs ?? DEFAULT_IDLE_MS);
    const timer = this.#idleTimer;
    // An idle probe must not keep a process alive that has nothing else to do.
    timer.unref();
  }
}

function isPositive(reply: SmtpReply): boolean {
  return reply.code >= 200 && reply.code < 300;
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}
