/**
 * RawSmtp, the one raw SMTP client of the tests and the bench, over node:net: exact bytes out,
 * exact replies back, so a test can send what no well-behaved client library would (bare CR,
 * bare LF, smuggling sequences, a PROXY header, talk before the greeting) and read every reply
 * as the server wrote it. Every wait is bounded. Also times the end of DATA for the bench.
 */
import { once } from 'node:events';
import net from 'node:net';

export interface RawSmtpOptions {
  readonly host?: string;
  readonly port: number;
  /** Source address of the connection (any 127.x.y.z), so a test can be an untrusted client. */
  readonly localAddress?: string;
  /** Bytes written as soon as the connection is open, before the greeting is read. */
  readonly preamble?: string | Buffer;
  /** Read the greeting (which must be 220) before `connect` resolves. Default true; false leaves it to `reply()`. */
  readonly greeting?: boolean;
  /** Turn Nagle's algorithm off, so each write leaves at once. Default false (Node's default). */
  readonly noDelay?: boolean;
  /** Bound on each wait for a reply, a drain or for the server to hang up. Default 10 s. */
  readonly timeoutMs?: number;
}

export class RawSmtp {
  readonly #socket: net.Socket;
  readonly #timeoutMs: number;
  #buffer = '';
  #ended = false;
  #wake: (() => void) | null = null;
  #endOfDataMs = Number.NaN;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      this.#buffer += data;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  /** Connects, writes the preamble if any, and reads the greeting (which must be 220) unless told not to. */
  static async connect(options: RawSmtpOptions): Promise<RawSmtp> {
    const socket = net.connect({
      host: options.host ?? '127.0.0.1',
      port: options.port,
      noDelay: options.noDelay ?? false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawSmtp(socket, options.timeoutMs ?? 10_000);
    if (options.preamble !== undefined) client.write(options.preamble);
    if (options.greeting === false) return client;
    const greeting = await client.reply();
    if (!greeting.startsWith('220')) throw new Error(`expected a 220 greeting, got: ${greeting}`);
    return client;
  }

  /** The next complete reply (every line of a multi-line one, joined by "\n"). */
  async reply(): Promise<string> {
    const deadline = Date.now() + this.#timeoutMs;
    for (;;) {
      const end = completeReply(this.#buffer);
      if (end > 0) {
        const text = this.#buffer.slice(0, end - 2).replace(/\r\n/g, '\n');
        this.#buffer = this.#buffer.slice(end);
        return text;
      }
      if (this.#ended) throw new Error(`connection closed while waiting for a reply (had "${this.#buffer}")`);
      if (Date.now() > deadline) throw new Error(`no reply within ${this.#timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** Sends one command line (CRLF added) and returns its reply. */
  async cmd(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Sends bytes as they are (latin1 for strings: one char, one byte); false means: `drain()` first. */
  write(bytes: string | Buffer): boolean {
    return this.#socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
  }

  /** Resolves once the socket's write buffer has emptied (bounded), for streaming large DATA. */
  async drain(): Promise<void> {
    if (!this.#socket.writableNeedDrain) return;
    await once(this.#socket, 'drain', { signal: AbortSignal.timeout(this.#timeoutMs) }).catch(
      (err: unknown) => {
        throw new Error(`the socket did not drain within ${this.#timeoutMs} ms`, { cause: err });
      },
    );
  }

  /**
   * One whole transaction: MAIL, each RCPT, DATA, then `message` as it is (not dot-stuffed:
   * see `dotStuff`) followed by the terminator ".\r\n", so `message` should end with CRLF.
   * Returns the reply to the end of DATA; throws on any refusal before it.
   */
  async send(from: string, to: readonly string[], message: string | Buffer): Promise<string> {
    expectCode(await this.cmd(`MAIL FROM:<${from}>`), '250', 'MAIL');
    for (const rcpt of to) expectCode(await this.cmd(`RCPT TO:<${rcpt}>`), '250', `RCPT ${rcpt}`);
    expectCode(await this.cmd('DATA'), '354', 'DATA');
    return this.#endData(message);
  }

  /**
   * DATA, then `body` dot-stuffed as a client must (CRLF added if missing) and the terminator.
   * Returns the reply to the end of DATA, or the reply to DATA itself when that is not 354.
   */
  async data(body: string): Promise<string> {
    const go = await this.cmd('DATA');
    if (!go.startsWith('354')) return go;
    return this.#endData(dotStuff(Buffer.from(body.endsWith('\r\n') ? body : `${body}\r\n`, 'latin1')));
  }

  /** Milliseconds from writing the last end of DATA (".\r\n", by `send` or `data`) to its reply. */
  get endOfDataMs(): number {
    return this.#endOfDataMs;
  }

  async #endData(message: string | Buffer): Promise<string> {
    this.write(message);
    const started = performance.now();
    this.write('.\r\n');
    const reply = await this.reply();
    this.#endOfDataMs = performance.now() - started;
    return reply;
  }

  /** Resolves when the server has closed the connection (bounded). */
  async closed(): Promise<void> {
    const deadline = Date.now() + this.#timeoutMs;
    while (!this.#ended) {
      if (Date.now() > deadline) throw new Error(`the server did not close within ${this.#timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** QUIT, then wait for the server to hang up; with `wait: false`, QUIT and half-close at once. */
  async quit(options: { wait?: boolean } = {}): Promise<void> {
    if (this.#ended) return;
    if (options.wait === false) {
      this.#socket.end('QUIT\r\n');
      return;
    }
    this.write('QUIT\r\n');
    await this.closed().catch(() => this.#socket.destroy());
  }

  destroy(): void {
    this.#socket.destroy();
  }
}

/**
 * SMTP transparency (RFC 5321 §4.5.2) for a CRLF message: a line that starts with "." gets
 * another one. `send` does not do it, so a test can send any bytes it likes.
 */
export function dotStuff(message: Buffer): Buffer {
  const text = message.toString('latin1');
  return Buffer.from(text.replace(/(^|\r\n)\./g, '$1..'), 'latin1');
}

/** Throws unless `reply` starts with `code`, naming `what` was refused. */
export function expectCode(reply: string, code: string, what: string): void {
  if (!reply.startsWith(code)) throw new Error(`${what}: expected ${code}, got "${reply}"`);
}

/** Index just past the last line of the first complete reply in `buffer`, or 0. */
function completeReply(buffer: string): number {
  let start = 0;
  for (;;) {
    const eol = buffer.indexOf('\r\n', start);
    if (eol < 0) return 0;
    // "250-..." continues, "250 ..." (or a bare "250") is the last line.
    if (buffer[start + 3] !== '-') return eol + 2;
    start = eol + 2;
  }
}
