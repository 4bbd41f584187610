import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/** An SMTP reply a hook returns to refuse a command, e.g. `{ code: 451, message: '4.3.0 Try later' }`. */
export interface SmtpReply {
  code: number;
  message: string;
}

/** A message the sink accepted (answered 250 after DATA). */
export interface SinkMessage {
  /** Envelope sender; '' for the null sender `<>`. */
  mailFrom: string;
  rcptTo: string[];
  /** The message exactly as received after DATA (dot-unstuffed). */
  raw: Buffer;
  remoteAddress: string;
  /** True when the client had switched to TLS with STARTTLS. */
  secure: boolean;
  receivedAt: number;
  /** The MAIL FROM BODY= parameter, lower-case: "8bitmime", or "7bit" (also when none was given). */
  body: string;
}

/**
 * Programmable answers. A hook returning undefined (or a code below 400) accepts; returning
 * a reply with a 4xx/5xx code refuses with exactly that code. A hook that throws refuses with 451, so a
 * bug in a test shows up as a temporary failure, never as a bounce.
 */
export interface SinkBehaviour {
  onMailFrom?: ((address: string, session: SMTPServerSession) => SmtpReply | undefined) | undefined;
  onRcpt?: ((address: string, session: SMTPServerSession) => SmtpReply | undefined) | undefined;
  /**
   * Called with the complete message before it is recorded; a reply refuses it. May return a
   * promise, so a test can make the sink slow (the answer to DATA waits for it).
   */
  onData?: ((message: SinkMessage) => SmtpReply | undefined | Promise<SmtpReply | undefined>) | undefined;
}

export interface SmtpSinkOptions extends SinkBehaviour {
  /** Offer STARTTLS (smtp-server's built-in test certificate). Default true. */
  tls?: boolean;
  /** SIZE limit in bytes; larger messages get 552. */
  size?: number;
  /** Address to listen on, default 127.0.0.1 (any 127.x.y.z works on Linux: several sinks can share a port). */
  host?: string;
  /** Port to listen on, default 0 (kernel-chosen). */
  port?: number;
  /** Accept AUTH PLAIN/LOGIN with these credentials (user → password); others get 535. */
  users?: Record<string, string>;
}

export interface SmtpSink {
  readonly host: string;
  readonly port: number;
  /** Accepted messages, oldest first. */
  readonly messages: SinkMessage[];
  /** Number of SMTP connections opened so far. */
  readonly connections: number;
  /** Users that authenticated, one entry per successful AUTH. */
  readonly logins: string[];
  /** Replaces the given hooks (pass `undefined` to remove one); others stay as they are. */
  setBehaviour(behaviour: SinkBehaviour): void;
  /** Resolves with all messages once at least `n` were accepted. */
  waitForMessages(n: number, timeoutMs?: number): Promise<SinkMessage[]>;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';

/** Starts an SMTP server on 127.0.0.1 (kernel-chosen port) that records what it accepts. */
export async function startSmtpSink(opts: SmtpSinkOptions = {}): Promise<SmtpSink> {
  const { tls = true, size, host = HOST, port = 0, users, ...initial } = opts;
  const behaviour: SinkBehaviour = { ...initial };
  const messages: SinkMessage[] = [];
  const waiters = new Set<() => void>();
  let connections = 0;
  const logins: string[] = [];

  const server = new SMTPServer({
    name: 'sink.test',
    logger: false, // also silences the warning about the built-in certificate
    disableReverseLookup: true, // no DNS from tests (see TOOLCHAIN.md)
    authOptional: true,
    hideSTARTTLS: !tls,
    disabledCommands: tls ? [] : ['STARTTLS'],
    ...(size === undefined ? {} : { size }),
    closeTimeout: 1000, // close() should not wait 30 s for a pooled client to hang up
    authMethods: ['PLAIN', 'LOGIN'],
    allowInsecureAuth: true,
    onAuth(auth, _session, callback) {
      if (users && auth.username !== undefined && users[auth.username] === auth.password) {
        logins.push(auth.username);
        return callback(null, { user: auth.username });
      }
      callback(smtpError({ code: 535, message: '5.7.8 Authentication credentials invalid' }));
    },
    onConnect(_session, callback) {
      connections++;
      callback();
    },
    onMailFrom(address, session, callback) {
      callback(decide(() => behaviour.onMailFrom?.(address.address, session)));
    },
    onRcptTo(address, session, callback) {
      callback(decide(() => behaviour.onRcpt?.(address.address, session)));
    },
    onData(stream, session, callback) {
      readAll(stream).then(
        (raw) => {
          if (stream.sizeExceeded) {
            return callback(
              smtpError({ code: 552, message: '5.3.4 Message exceeds fixed maximum message size' }),
            );
          }
          const message: SinkMessage = {
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            rcptTo: session.envelope.rcptTo.map((rcpt) => rcpt.address),
            raw,
            remoteAddress: session.remoteAddress,
            secure: session.secure,
            receivedAt: Date.now(),
            body: (session.envelope.bodyType ?? '').toLowerCase(),
          };
          return decideLater(() => behaviour.onData?.(message)).then((refusal) => {
            if (refusal) return callback(refusal);
            messages.push(message);
            for (const wake of waiters) wake();
            callback(null, `OK: message ${messages.length} queued`);
          });
        },
        (err: unknown) =>
          callback(smtpError({ code: 451, message: `4.3.0 Sink could not read DATA: ${String(err)}` })),
      );
    },
  });
  // smtp-server reports client-side socket errors here; without a listener they would crash the test.
  server.on('error', () => {});

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const address = server.server.address();
  if (!address || typeof address !== 'object') throw new Error('SMTP sink: listener has no TCP address');

  return {
    host,
    port: address.port,
    messages,
    logins,
    get connections() {
      return connections;
    },
    setBehaviour(next) {
      Object.assign(behaviour, next);
    },
    waitForMessages(n, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (messages.length < n) return;
          finish();
          resolve([...messages]);
        };
        const timer = setTimeout(() => {
          finish();
          reject(
            new Error(
              `SMTP sink: expected ${n} message(s) within ${timeoutMs} ms, ${messages.length} arrived`,
            ),
          );
        }, timeoutMs);
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Turns a hook's answer into what smtp-server expects: null to accept, an Error with
 * `responseCode` to refuse. An Error without responseCode would become a 550 bounce.
 */
function decide(hook: () => SmtpReply | undefined): Error | null {
  let reply: SmtpReply | undefined;
  try {
    reply = hook();
  } catch (err) {
    reply = {
      code: 451,
      message: `4.3.0 Sink hook failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  return reply && reply.code >= 400 ? smtpError(reply) : null;
}

/** `decide` for a hook that may return a promise; a rejected promise also refuses with 451. */
async function decideLater(
  hook: () => SmtpReply | undefined | Promise<SmtpReply | undefined>,
): Promise<Error | null> {
  try {
    const reply = await hook();
    return decide(() => reply);
  } catch (err) {
    return decide(() => {
      throw err;
    });
  }
}

function smtpError(reply: SmtpReply): Error & { responseCode: number } {
  return Object.assign(new Error(reply.message), { responseCode: reply.code });
}

async function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
