/**
 * Recipient verification against LDAP / Active Directory with ldapts: is there an entry whose
 * `mail` or `proxyAddresses` ("SMTP:primary", "smtp:secondary"; caseIgnoreMatch, so the
 * filter's `smtp:%s` matches both) is the address?
 *
 * One connection, opened on first use (connect, StartTLS if configured, bind if configured)
 * and shared by concurrent lookups (LDAP multiplexes them by message ID). When it fails or the
 * server closes it, the next lookup opens a fresh one and binds again; ldapts's own transparent
 * reconnect is never relied on, since it would skip StartTLS and the bind.
 *
 * 'known' and 'unknown' are answers of the directory. Everything else (unreachable, TLS or bind
 * failure, an LDAP error, no answer by the signal's deadline or within timeoutMs) throws a
 * DaemonError naming the server: the caller answers 450, never 550.
 */
import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';
import { Client, ResultCodeError } from 'ldapts';
import { DaemonError } from './daemon-socket.js';

/** `%s` is the address, escaped for the filter (RFC 4515). */
export const DEFAULT_LDAP_FILTER = '(|(mail=%s)(proxyAddresses=smtp:%s))';

export interface LdapSourceConfig {
  /** ldap://host[:389] or ldaps://host[:636]. */
  url: string;
  /** StartTLS on an ldap:// connection before binding (ignored for ldaps://). */
  startTls: boolean;
  /** null: anonymous. */
  bindDn: string | null;
  bindPassword: string | null;
  /** Search base; the search is a subtree search. */
  base: string;
  /** An RFC 4515 filter in which every `%s` is replaced by the escaped address, e.g. DEFAULT_LDAP_FILTER. */
  filter: string;
  /** Bound on connecting and on each LDAP operation (the caller's signal bounds a lookup too). */
  timeoutMs: number;
  /** Verify the server's certificate (ldaps:// and StartTLS). */
  tlsRejectUnauthorized: boolean;
}

export type RecipientStatus = 'known' | 'unknown';

/** RFC 4515 §3: `*`, `(`, `)`, `\` and NUL as `\XX`, so an address can only match itself. */
export function escapeFilterValue(value: string): string {
  return value.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

/** The configured filter for one address. */
export function recipientFilter(template: string, address: string): string {
  const escaped = escapeFilterValue(address);
  return template.replaceAll('%s', () => escaped);
}

export class LdapRecipients {
  readonly #config: LdapSourceConfig;
  readonly #host: string;
  readonly #secure: boolean;
  /** "ldap at host:port", the start of every error message. */
  readonly #name: string;
  /** The connection in use (set up, StartTLS done, bound). */
  #client: Client | undefined;
  /** A connection being set up, shared by the lookups that wait for it. */
  #opening: Promise<Client> | undefined;
  #closed = false;

  constructor(config: LdapSourceConfig) {
    let url: URL;
    try {
      url = new URL(config.url);
    } catch {
      throw new Error(`ldap: invalid url ${JSON.stringify(config.url)}`);
    }
    if (url.protocol !== 'ldap:' && url.protocol !== 'ldaps:')
      throw new Error(`ldap: url ${JSON.stringify(config.url)} is neither ldap:// nor ldaps://`);
    this.#config = config;
    this.#secure = url.protocol === 'ldaps:';
    this.#host = url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
    const port = url.port || (this.#secure ? '636' : '389');
    this.#name = `ldap at ${url.hostname || 'localhost'}:${port}`;
  }

  /** 'known' when the filter finds an entry under the base, 'unknown' when it finds none. */
  lookup(address: string, signal: AbortSignal): Promise<RecipientStatus> {
    if (this.#closed) return Promise.reject(new DaemonError(`${this.#name}: closed`));
    // No mailbox has a control character (RFC 5321), and slapd ends an IA5String assertion at
    // NUL: "alice@example.com\0x" would match alice's mail. So such an address is not asked.
    if (hasControlCharacter(address)) return Promise.resolve('unknown');
    const filter = recipientFilter(this.#config.filter, address);
    return this.#withDeadline(signal, async () => {
      // A connection kept from earlier lookups may have gone stale without us seeing it yet:
      // then one more try, on a fresh connection.
      for (let attempt = 1; ; attempt++) {
        const { client, reused } = await this.#connection();
        try {
          // No I/O between the check in #connection() and here: ldapts finds the socket connected
          // and sends on it (its transparent reconnect would skip StartTLS and the bind).
          const result = await client.search(this.#config.base, {
            scope: 'sub',
            filter,
            sizeLimit: 1,
            attributes: ['dn'],
          });
          return result.searchEntries.length > 0 ? 'known' : 'unknown';
        } catch (err) {
          // A result code (no such base, busy…) leaves the connection usable; anything else broke it.
          if (err instanceof ResultCodeError)
            throw new DaemonError(`${this.#name}: search in ${this.#config.base}: ${reason(err)}`);
          this.#discard(client);
          if (!reused || attempt > 1 || signal.aborted || this.#closed)
            throw new DaemonError(`${this.#name}: search: ${reason(err)}`);
        }
      }
    });
  }

  /** Unbinds and closes the connection; later lookups throw. */
  async close(): Promise<void> {
    this.#closed = true;
    const client = this.#client;
    this.#client = undefined;
    await client?.unbind().catch(() => {});
    // One being set up is unbound as soon as it is (see #connection).
    await this.#opening?.catch(() => {});
  }

  /** The connection in use, or a new one; `reused` when an earlier lookup set it up. */
  async #connection(): Promise<{ client: Client; reused: boolean }> {
    const current = this.#client;
    if (current?.isConnected) return { client: current, reused: true };
    if (current) this.#discard(current); // the server closed it
    if (this.#closed) throw new DaemonError(`${this.#name}: closed`);
    this.#opening ??= this.#open().then(
      (client) => {
        this.#opening = undefined;
        if (this.#closed) {
          client.unbind().catch(() => {});
          throw new DaemonError(`${this.#name}: closed`);
        }
        this.#client = client;
        return client;
      },
      (err: unknown) => {
        this.#opening = undefined;
        throw err;
      },
    );
    return { client: await this.#opening, reused: false };
  }

  /** Connect, StartTLS, bind, all within timeoutMs; on any failure the socket is closed. */
  async #open(): Promise<Client> {
    const { timeoutMs, tlsRejectUnauthorized, bindDn, bindPassword, startTls } = this.#config;
    const tlsOptions: ConnectionOptions = {
      rejectUnauthorized: tlsRejectUnauthorized,
      host: this.#host, // what the certificate is checked against
      ...(net.isIP(this.#host) ? {} : { servername: this.#host }),
    };
    // Whether the TCP (ldaps: TLS) connection came up, to tell "unreachable" from a later step.
    let connected = false;
    const client = new Client({
      url: this.#config.url,
      timeout: timeoutMs,
      connectTimeout: timeoutMs,
      ...(this.#secure
        ? {
            // Any tlsOptions make ldapts connect with TLS at once: only for ldaps://.
            tlsOptions,
            createSecureConnection: ((...args: Parameters<typeof tls.connect>) =>
              tls.connect(...args).once('secureConnect', () => {
                connected = true;
              })) as typeof tls.connect,
          }
        : {
            createConnection: ((...args: Parameters<typeof net.connect>) =>
              net.connect(...args).once('connect', () => {
                connected = true;
              })) as typeof net.connect,
          }),
    });
    let step = 'connect';
    const setUp = async () => {
      if (startTls && !this.#secure) {
        step = 'StartTLS';
        await client.startTLS(tlsOptions);
      }
      // Anonymous is a bind too (empty name and password): it opens the connection now, so a
      // server that does not answer shows here, not in the first search.
      step = bindDn === null ? 'anonymous bind' : `bind as ${bindDn}`;
      await client.bind(bindDn ?? '', bindDn === null ? '' : (bindPassword ?? ''));
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        setUp(),
        new Promise<never>((_, reject) => {
          // The StartTLS handshake has no timeout of its own in ldapts.
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return client;
    } catch (err) {
      client.unbind().catch(() => {});
      throw new DaemonError(`${this.#name}: ${connected ? `${step}: ` : ''}${reason(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Forgets a client and closes its socket (unbind sends UnbindRequest, then destroys it). */
  #discard(client: Client): void {
    if (this.#client === client) this.#client = undefined;
    client.unbind().catch(() => {});
  }

  /** Runs `work` until the signal fires, then throws "no answer in time" (work goes on, ignored). */
  #withDeadline<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    const timedOut = () => new DaemonError(`${this.#name}: no answer in time`);
    if (signal.aborted) return Promise.reject(timedOut());
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(timedOut());
      signal.addEventListener('abort', onAbort, { once: true });
      work().then(
        (value) => {
          signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(err instanceof DaemonError ? err : new DaemonError(`${this.#name}: ${reason(err)}`));
        },
      );
    });
  }
}

/** What went wrong, short: an errno code (ECONNREFUSED), a result code's name, or the message. */
function reason(err: unknown): string {
  if (err instanceof ResultCodeError) {
    const text = err.message.replace(/\s*Code: 0x[\da-f]+$/i, '').trim();
    return `${err.name} (result code ${err.code})${text ? `: ${text}` : ''}`;
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code && 'syscall' in err) return code;
    return code && !err.message.includes(code) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
