/**
 * Connection reuse per destination: a bounded number of sessions per host (address:port),
 * each carrying up to `maxMessages` transactions with RSET in between, kept open a short while
 * between messages. A job that finds its host saturated waits for a session; when too many
 * already wait, it is told the host is busy (and puts itself back), so that one slow
 * destination holds only a bounded share of the delivery slots.
 */
import { type SessionSettings, SmtpSession } from './smtp-session.js';

export interface PoolOptions {
  readonly maxPerHost: number;
  readonly maxMessages: number;
  /** Close a session unused this long (ms). */
  readonly idleTimeout: number;
  /** Jobs that may wait for a session of one host before the next is told it is busy. */
  readonly maxWaiting?: number;
}

/** Every session of the host is in use and enough jobs already wait for one. */
export class HostBusy extends Error {
  override readonly name = 'HostBusy';
}

interface Idle {
  readonly session: SmtpSession;
  readonly timer: NodeJS.Timeout;
}

interface Host {
  /** Sessions that exist or are being opened (idle ones included). */
  open: number;
  readonly idle: Idle[];
  readonly waiting: (() => void)[];
}

const hostKey = (s: SessionSettings) => `${s.target.address}|${s.target.port}`;
const settingsKey = (s: SessionSettings) =>
  JSON.stringify([s.tls, s.verifyCertificates, s.helo, s.auth?.user ?? null, s.auth?.pass ?? null]);

export class ConnectionPool {
  readonly #options: PoolOptions;
  readonly #hosts = new Map<string, Host>();
  readonly #keys = new WeakMap<SmtpSession, string>();
  #closed = false;
  /** Sessions opened since the pool started (for tests and metrics). */
  opened = 0;

  constructor(options: PoolOptions) {
    this.#options = options;
  }

  /**
   * A session for these settings: an idle one (after a successful RSET), a new one, or the
   * next one released. Throws HostBusy, or HostFailure when a new connection fails.
   */
  async acquire(
    settings: SessionSettings,
    opened?: (session: SmtpSession) => void,
    /** How many jobs may wait for this host (default: options.maxWaiting, or maxPerHost). */
    waitLimit?: number,
  ): Promise<SmtpSession> {
    const key = hostKey(settings);
    const wanted = settingsKey(settings);
    for (;;) {
      if (this.#closed) throw new HostBusy('the delivery service is stopping');
      const host = this.#host(key);
      const i = host.idle.findIndex((idle) => this.#keys.get(idle.session) === wanted);
      if (i >= 0) {
        const [idle] = host.idle.splice(i, 1);
        if (!idle) continue;
        clearTimeout(idle.timer);
        if (
          await idle.session.reset().then(
            () => true,
            () => false,
          )
        )
          return idle.session;
        this.#discard(key, idle.session);
        continue;
      }
      if (host.open < this.#options.maxPerHost) {
        host.open++;
        try {
          const session = await SmtpSession.open(settings);
          this.opened++;
          this.#keys.set(session, wanted);
          opened?.(session);
          return session;
        } catch (err) {
          host.open--;
          this.#wakeOne(host);
          throw err;
        }
      }
      const stale = host.idle.shift();
      if (stale) {
        // idle but for other settings: make room
        clearTimeout(stale.timer);
        this.#discard(key, stale.session);
        continue;
      }
      if (host.waiting.length >= (waitLimit ?? this.#options.maxWaiting ?? this.#options.maxPerHost)) {
        throw new HostBusy(
          `all ${this.#options.maxPerHost} connections to ${settings.target.address} are busy`,
        );
      }
      await new Promise<void>((resolve) => host.waiting.push(resolve));
    }
  }

  /** Give a session back; `reusable` false (or too many messages, or closing) closes it. */
  release(session: SmtpSession, reusable: boolean): void {
    const key = hostKey(session.settings);
    const host = this.#host(key);
    if (!reusable || this.#closed || !session.open || session.messages >= this.#options.maxMessages) {
      this.#discard(key, session);
      return;
    }
    const timer = setTimeout(() => {
      const i = host.idle.findIndex((idle) => idle.session === session);
      if (i >= 0) host.idle.splice(i, 1);
      this.#discard(key, session);
    }, this.#options.idleTimeout);
    timer.unref();
    host.idle.push({ session, timer });
    this.#wakeOne(host);
  }

  /** Close idle sessions; sessions in use close when released. Waiting jobs are told the host is busy. */
  close(): void {
    this.#closed = true;
    for (const [key, host] of this.#hosts) {
      for (const idle of host.idle.splice(0)) {
        clearTimeout(idle.timer);
        this.#discard(key, idle.session);
      }
      for (const wake of host.waiting.splice(0)) wake();
    }
  }

  #discard(key: string, session: SmtpSession): void {
    session.close();
    const host = this.#host(key);
    host.open--;
    this.#wakeOne(host);
  }

  #wakeOne(host: Host): void {
    host.waiting.shift()?.();
  }

  #host(key: string): Host {
    let host = this.#hosts.get(key);
    if (!host) {
      host = { open: 0, idle: [], waiting: [] };
      this.#hosts.set(key, host);
    }
    return host;
  }
}
