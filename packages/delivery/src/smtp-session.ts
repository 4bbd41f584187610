/**
 * One SMTP client connection (nodemailer's SMTPConnection) as promises: open (connect,
 * greeting, EHLO, STARTTLS by the route's TLS mode, AUTH), send one transaction with an answer
 * per recipient, RSET for the next one, QUIT. Hosts are always IP addresses here: names were
 * resolved through Moat's own resolver, so nodemailer never asks the system's.
 */
import { isAscii } from 'node:buffer';
import { isIP } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { TlsMode } from '@moat/policy';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { describeTarget, type Target } from './destinations.js';

type SmtpError = Error & {
  code?: string;
  command?: string;
  response?: string;
  responseCode?: number;
  recipient?: string;
  rejectedErrors?: SmtpError[];
};

export interface SessionSettings {
  readonly target: Target;
  /** What Moat says in EHLO (config `hostname`). */
  readonly helo: string;
  readonly tls: TlsMode;
  readonly verifyCertificates: boolean;
  readonly connectTimeout: number;
  readonly commandTimeout: number;
  readonly auth?: { readonly user: string; readonly pass: string } | undefined;
}

/** How the connection ended up protected, for the `delivery.tls` log line. */
export interface TlsOutcome {
  readonly mode: TlsMode;
  /** 'none': plaintext; 'fallback': STARTTLS failed and an opportunistic retry went plaintext. */
  readonly result: 'tls' | 'none' | 'fallback';
  readonly protocol?: string | undefined;
  readonly cipher?: string | undefined;
  readonly verified?: boolean | undefined;
}

/** A remote answer: code 0 means there was none (the connection failed). */
export interface SmtpReply {
  readonly code: number;
  readonly text: string;
}

/** The session could not be set up with this host: try the next one. */
export class HostFailure extends Error {
  override readonly name = 'HostFailure';
  constructor(
    readonly stage: 'connect' | 'tls' | 'auth',
    readonly reply: SmtpReply,
    readonly status: string,
    readonly target: Target,
  ) {
    super(reply.text);
  }
}

export interface RecipientReply extends SmtpReply {
  readonly recipient: string;
}

const codeOf = (text: string): number => Number(/^(\d{3})/.exec(text)?.[1] ?? 0);

export class SmtpSession {
  readonly settings: SessionSettings;
  readonly tls: TlsOutcome;
  /** Transactions sent over this connection. */
  messages = 0;
  readonly #conn: SMTPConnection;

  private constructor(conn: SMTPConnection, settings: SessionSettings, tls: TlsOutcome) {
    this.#conn = conn;
    this.settings = settings;
    this.tls = tls;
  }

  /** Connect and set the session up; throws HostFailure. */
  static async open(settings: SessionSettings): Promise<SmtpSession> {
    let conn: SMTPConnection;
    let fallback = false;
    try {
      conn = await connect(settings, settings.tls);
    } catch (err) {
      // Opportunistic TLS that the peer offered but could not complete: try again in plaintext,
      // as Postfix does at security level "may".
      const failure = toHostFailure(err as SmtpError, settings);
      if (settings.tls !== 'opportunistic' || failure.stage !== 'tls') throw failure;
      fallback = true;
      conn = await connect(settings, 'none').catch((e: unknown) => {
        throw toHostFailure(e as SmtpError, settings);
      });
    }
    if (settings.auth) {
      const auth = settings.auth;
      await new Promise<void>((resolve, reject) =>
        conn.login({ user: auth.user, pass: auth.pass }, (err) => (err ? reject(err) : resolve())),
      ).catch((err: unknown) => {
        conn.close();
        const e = err as SmtpError;
        throw new HostFailure(
          'auth',
          { code: 0, text: `authentication as ${auth.user} failed: ${e.response ?? e.message}` },
          '4.7.0',
          settings.target,
        );
      });
    }
    return new SmtpSession(conn, settings, tlsOutcome(conn, settings.tls, fallback));
  }

  /** Whether the connection is still open. */
  get open(): boolean {
    return !this.#conn.destroyed;
  }

  /**
   * One transaction: MAIL FROM, RCPT TO each, DATA. Resolves with an answer for every
   * recipient; an answer with code 0 means the connection failed in the middle. `crlf`: the
   * body's line endings are known to be CRLF only, so the DATA stream only stuffs dots and does
   * not scan for bare CR or LF (patches/nodemailer: a second scan of what the edge checked).
   */
  async send(
    sender: string,
    recipients: readonly string[],
    body: Buffer,
    crlf = false,
  ): Promise<RecipientReply[]> {
    this.messages++;
    const envelope = {
      from: sender,
      to: [...recipients],
      size: body.length,
      use8BitMime: !isAscii(body),
      crlf,
    };
    return new Promise((resolve) => {
      this.#conn.send(envelope, body, (err, info) => {
        if (!err) {
          const rejected = new Map((info.rejectedErrors ?? []).map((e) => [e.recipient ?? '', replyOf(e)]));
          const ok = { code: codeOf(info.response), text: info.response };
          return resolve(recipients.map((r) => ({ recipient: r, ...(rejected.get(r) ?? ok) })));
        }
        resolve(this.#failedReplies(err as SmtpError, recipients));
      });
    });
  }

  #failedReplies(err: SmtpError, recipients: readonly string[]): RecipientReply[] {
    // Recipients refused at RCPT keep their own answer; the rest get the one that ended the
    // transaction. nodemailer hands the RCPT answers over only when every recipient was
    // refused, so for a failed DATA they are read from its envelope state.
    const envelope = (this.#conn as unknown as { _envelope?: { rejectedErrors?: SmtpError[] } })._envelope;
    const rcptErrors = err.rejectedErrors ?? envelope?.rejectedErrors ?? [];
    const rejected = new Map(rcptErrors.map((e) => [e.recipient ?? '', replyOf(e)]));
    const common = replyOf(err);
    return recipients.map((r) => ({ recipient: r, ...(rejected.get(r) ?? common) }));
  }

  /** RSET: ready for the next transaction. Rejects when the connection is gone. */
  reset(): Promise<void> {
    return new Promise((resolve, reject) => this.#conn.reset((err) => (err ? reject(err) : resolve())));
  }

  /** QUIT, and drop the socket if the peer does not close it soon. */
  close(): void {
    if (this.#conn.destroyed) return;
    try {
      this.#conn.quit();
    } catch {
      // already closing
    }
    setTimeout(() => this.#conn.close(), 1000).unref();
  }
}

function replyOf(err: SmtpError): SmtpReply {
  if (err.responseCode && err.response) return { code: err.responseCode, text: err.response };
  if (err.code === 'EMESSAGE' && /size/i.test(err.message)) {
    return { code: 552, text: `552 5.3.4 ${err.message}` };
  }
  return { code: 0, text: err.message };
}

function connect(settings: SessionSettings, tls: TlsMode): Promise<SMTPConnection> {
  const { target } = settings;
  const conn = new SMTPConnection({
    host: target.address,
    port: target.port,
    name: settings.helo,
    connectionTimeout: settings.connectTimeout,
    greetingTimeout: settings.connectTimeout,
    socketTimeout: settings.commandTimeout,
    ignoreTLS: tls === 'none',
    requireTLS: tls === 'required',
    opportunisticTLS: tls === 'opportunistic',
    tls: {
      rejectUnauthorized: settings.verifyCertificates,
      ...(isIP(target.name) ? {} : { servername: target.name }),
    },
    logger: false,
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      // A socket error during the STARTTLS handshake (a certificate that does not verify)
      // arrives as ESOCKET; mark it as the TLS failure it is.
      const tlsFailure = conn.upgrading === true;
      conn.close();
      reject(tlsFailure ? Object.assign(err as SmtpError, { code: 'ETLS' }) : err);
    };
    // Errors after the session is up are reported through the callbacks of send/reset;
    // the listener stays so that an 'error' event never goes unhandled.
    conn.on('error', fail);
    conn.once('end', () =>
      fail(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' })),
    );
    conn.connect((err) => {
      if (err) return fail(err);
      settled = true;
      resolve(conn);
    });
  });
}

function toHostFailure(err: SmtpError, settings: SessionSettings): HostFailure {
  const where = describeTarget(settings.target);
  if (err.code === 'ETLS' || (settings.tls === 'required' && err.command === 'STARTTLS')) {
    const why = err.response ?? err.message;
    return new HostFailure(
      'tls',
      { code: 0, text: `TLS with ${where} failed (${settings.tls}): ${why}` },
      settings.tls === 'required' ? '4.7.10' : '4.7.0',
      settings.target,
    );
  }
  if (err.responseCode && err.response) {
    return new HostFailure(
      'connect',
      { code: err.responseCode, text: err.response },
      '4.4.2',
      settings.target,
    );
  }
  const cause = (err as { originalCode?: string }).originalCode ?? err.code ?? 'ECONNECTION';
  return new HostFailure(
    'connect',
    { code: 0, text: `connect to ${where}: ${err.message} (${cause})` },
    '4.4.1',
    settings.target,
  );
}

function tlsOutcome(conn: SMTPConnection, mode: TlsMode, fallback: boolean): TlsOutcome {
  const socket = conn._socket;
  if (conn.secure && socket instanceof TLSSocket) {
    return {
      mode,
      result: 'tls',
      protocol: socket.getProtocol() ?? undefined,
      cipher: socket.getCipher()?.name,
      verified: socket.authorized,
    };
  }
  return { mode, result: fallback ? 'fallback' : 'none' };
}
