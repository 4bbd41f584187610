/**
 * SmtpCallout against a real SMTP server (smtp-server, the testkit's sink: it offers STARTTLS)
 * that knows some recipients, refuses others with 550 5.1.1 and greylists one with 450 4.2.0.
 * Between the two sits a recording TCP proxy: every line the callout sent and every reply,
 * per connection, so the tests can assert the exact dialogue; it can also kill every connection
 * and refuse new ones (the server process gone), come back on the same port, hold the server's
 * replies (a hung server), and refuse EHLO itself (an old server).
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, type SmtpReply as SinkReply, type SmtpSink, startSmtpSink } from '@moat/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { DaemonError } from './daemon-socket.js';
import { type CalloutConfig, ReplyParser, SmtpCallout } from './smtp-callout.js';

const KNOWN = new Set(['alice@example.com', 'bob@example.com', 'jörg@example.com']);

/** What the server's hooks saw: "MAIL <sender>" / "RCPT <recipient>". */
const seen: string[] = [];
/** Set by a test: called in the server's RCPT hook. */
let onRcpt: ((address: string) => void) | undefined;

function rcptAnswer(address: string): SinkReply | undefined {
  seen.push(`RCPT ${address}`);
  onRcpt?.(address);
  if (KNOWN.has(address)) return undefined;
  if (address === 'greylisted@example.com')
    return { code: 450, message: '4.2.0 Greylisted, try again later' };
  if (address === 'full@example.com') return { code: 452, message: '4.2.2 Mailbox full' };
  if (address.endsWith('@elsewhere.test')) return { code: 554, message: '5.7.1 Relaying denied' };
  return { code: 550, message: '5.1.1 No such user here' };
}

interface Conversation {
  /** Lines the callout sent. */
  readonly sent: string[];
  /** Replies' lines as the server sent them. */
  readonly received: string[];
  /** The callout closed its side. */
  clientEnded: boolean;
}

interface Recorder {
  readonly port: number;
  readonly conversations: Conversation[];
  target: number;
  /** Don't forward the server's replies (a hung server: connected, silent). */
  hold: boolean;
  /** Answer EHLO with 502 instead of forwarding it. */
  refuseEhlo: boolean;
  /** Resets every connection and stops listening: the server is gone. */
  kill(): Promise<void>;
  /** Listens again on the same port. */
  back(): Promise<void>;
  close(): Promise<void>;
}

async function startRecorder(target: number): Promise<Recorder> {
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
  };
  const lines = (text: string) => text.split('\r\n').filter((l) => l !== '');
  let server: net.Server | undefined;
  let port = 0;
  const recorder: Recorder = {
    get port() {
      return port;
    },
    conversations: [],
    target,
    hold: false,
    refuseEhlo: false,
    async kill() {
      for (const socket of sockets) socket.resetAndDestroy();
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server = undefined;
    },
    async back() {
      await listen(port);
    },
    close() {
      return recorder.kill();
    },
  };
  const listen = (at: number) =>
    new Promise<void>((resolve, reject) => {
      const s = net.createServer((client) => {
        track(client);
        const conversation: Conversation = { sent: [], received: [], clientEnded: false };
        recorder.conversations.push(conversation);
        const upstream = net.connect({ host: '127.0.0.1', port: recorder.target });
        track(upstream);
        client.on('data', (chunk) => {
          for (const line of lines(chunk.toString('utf8'))) {
            conversation.sent.push(line);
            if (recorder.refuseEhlo && /^EHLO /i.test(line)) {
              conversation.received.push('502 5.5.2 Error: command not recognized');
              client.write('502 5.5.2 Error: command not recognized\r\n');
            } else upstream.write(`${line}\r\n`);
          }
        });
        upstream.on('data', (chunk) => {
          if (recorder.hold) return;
          conversation.received.push(...lines(chunk.toString('utf8')));
          client.write(chunk);
        });
        client.on('end', () => {
          conversation.clientEnded = true;
          upstream.end();
        });
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.end());
      });
      s.once('error', reject);
      s.listen(at, '127.0.0.1', () => {
        const address = s.address();
        if (address && typeof address === 'object') port = address.port;
        server = s;
        resolve();
      });
    });
  await listen(0);
  return recorder;
}

let sink: SmtpSink;
let recorder: Recorder;
const callouts: SmtpCallout[] = [];

beforeAll(async () => {
  sink = await startSmtpSink({
    onMailFrom: (address) => {
      seen.push(`MAIL <${address}>`);
      return undefined;
    },
    onRcpt: rcptAnswer,
  });
  recorder = await startRecorder(sink.port);
});
afterEach(async () => {
  await Promise.all(callouts.splice(0).map((c) => c.close()));
  recorder.conversations.length = 0;
  seen.length = 0;
  onRcpt = undefined;
  recorder.hold = false;
  recorder.refuseEhlo = false;
  recorder.target = sink.port;
});
afterAll(async () => {
  await recorder?.close();
  await sink?.close();
});

function callout(config: Partial<CalloutConfig> = {}): SmtpCallout {
  const c = new SmtpCallout({
    host: '127.0.0.1',
    port: recorder.port,
    helo: 'moat.test',
    timeoutMs: 2000,
    ...config,
  });
  callouts.push(c);
  return c;
}

const signal = () => AbortSignal.timeout(5000);

/** The DaemonError a verify throws (fails the test when it answers instead). */
async function failure(verify: Promise<unknown>): Promise<DaemonError> {
  const outcome = await verify.then(
    (answer) => new Error(`answered ${JSON.stringify(answer)}`),
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(DaemonError);
  return outcome as DaemonError;
}

const check = (address: string) => ['MAIL FROM:<>', `RCPT TO:<${address}>`, 'RSET'];

/**
 * The lines sent on conversation `i` once it is between checks: a verify answers at the RCPT
 * reply, and its RSET follows a moment later.
 */
async function sent(i: number): Promise<string[]> {
  await until(
    () => /^(RSET|QUIT)$/.test(recorder.conversations[i]?.sent.at(-1) ?? ''),
    `RSET on connection ${i}`,
  );
  return [...(recorder.conversations[i]?.sent ?? [])];
}

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('SmtpCallout (real smtp-server)', () => {
  test('known and unknown on one connection: EHLO once, then MAIL FROM:<> / RCPT / RSET per check', async () => {
    const c = callout();
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    expect(await c.verify('nobody@example.com', signal())).toBe('unknown');
    expect(await c.verify('bob@example.com', signal())).toBe('known');
    expect(await c.verify('someone@elsewhere.test', signal())).toBe('unknown'); // 554 5.7.1
    expect(recorder.conversations).toHaveLength(1);
    expect(await sent(0)).toEqual([
      'EHLO moat.test',
      ...check('alice@example.com'),
      ...check('nobody@example.com'),
      ...check('bob@example.com'),
      ...check('someone@elsewhere.test'),
    ]);
    const [conversation] = recorder.conversations;
    // STARTTLS was offered and not taken.
    expect(conversation?.received.some((line) => /^250[- ]STARTTLS$/.test(line))).toBe(true);
    expect(conversation?.received).toContain('550 5.1.1 No such user here');
    expect(seen).toEqual([
      'MAIL <>',
      'RCPT alice@example.com',
      'MAIL <>',
      'RCPT nobody@example.com',
      'MAIL <>',
      'RCPT bob@example.com',
      'MAIL <>',
      'RCPT someone@elsewhere.test',
    ]);
  });

  test('concurrent checks take turns on the one connection', async () => {
    const c = callout();
    const addresses = [
      'alice@example.com',
      'x@example.com',
      'bob@example.com',
      'y@example.com',
      'z@example.com',
    ];
    const answers = await Promise.all(addresses.map((a) => c.verify(a, signal())));
    expect(answers).toEqual(['known', 'unknown', 'known', 'unknown', 'unknown']);
    expect(recorder.conversations).toHaveLength(1);
    expect(await sent(0)).toEqual(['EHLO moat.test', ...addresses.flatMap(check)]);
  });

  test('4xx at RCPT (greylisting, 452) throws; the connection goes on after RSET', async () => {
    const c = callout();
    const greylisted = await failure(c.verify('greylisted@example.com', signal()));
    expect(greylisted.message).toBe(
      `smtp callout at 127.0.0.1:${recorder.port}: RCPT TO:<greylisted@example.com> answered 450 4.2.0 Greylisted, try again later`,
    );
    expect((await failure(c.verify('full@example.com', signal()))).message).toMatch(/answered 452 4\.2\.2/);
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    expect(recorder.conversations).toHaveLength(1);
    expect(await sent(0)).toEqual([
      'EHLO moat.test',
      ...check('greylisted@example.com'),
      ...check('full@example.com'),
      ...check('alice@example.com'),
    ]);
  });

  test('a refused MAIL FROM:<> throws (never unknown), without a RCPT', async () => {
    sink.setBehaviour({ onMailFrom: () => ({ code: 451, message: '4.3.0 Try later' }) });
    try {
      const c = callout();
      expect((await failure(c.verify('alice@example.com', signal()))).message).toMatch(
        /: MAIL FROM:<> answered 451 4\.3\.0 Try later$/,
      );
      expect(await sent(0)).toEqual(['EHLO moat.test', 'MAIL FROM:<>', 'RSET']);
    } finally {
      sink.setBehaviour({
        onMailFrom: (address) => {
          seen.push(`MAIL <${address}>`);
          return undefined;
        },
      });
    }
  });

  test('HELO when EHLO is refused', async () => {
    recorder.refuseEhlo = true;
    const c = callout();
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    expect(await c.verify('nobody@example.com', signal())).toBe('unknown');
    expect(await sent(0)).toEqual([
      'EHLO moat.test',
      'HELO moat.test',
      ...check('alice@example.com'),
      ...check('nobody@example.com'),
    ]);
  });

  test('a non-ASCII address is asked with SMTPUTF8 when offered', async () => {
    const c = callout();
    expect(await c.verify('jörg@example.com', signal())).toBe('known');
    expect(await sent(0)).toEqual([
      'EHLO moat.test',
      'MAIL FROM:<> SMTPUTF8',
      'RCPT TO:<jörg@example.com>',
      'RSET',
    ]);
  });

  test('CR LF in an address cannot smuggle in a command: unknown, nothing sent', async () => {
    const c = callout();
    expect(await c.verify('alice@example.com>\r\nRCPT TO:<bob@example.com', signal())).toBe('unknown');
    expect(recorder.conversations).toHaveLength(0);
  });

  test('nobody listening: ECONNREFUSED, naming the server', async () => {
    const port = await freePort();
    const c = callout({ port });
    expect((await failure(c.verify('alice@example.com', signal()))).message).toBe(
      `smtp callout at 127.0.0.1:${port}: ECONNREFUSED`,
    );
  });

  test('server killed mid-session: throws; down: throws; back: the next check reconnects', async () => {
    const c = callout();
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    onRcpt = (address) => {
      if (address === 'bob@example.com') void recorder.kill();
    };
    try {
      const err = await failure(c.verify('bob@example.com', signal()));
      expect(err.message).toMatch(/^smtp callout at 127\.0\.0\.1:\d+: (ECONNRESET|connection closed)$/);
      onRcpt = undefined;
      expect((await failure(c.verify('alice@example.com', signal()))).message).toMatch(/ECONNREFUSED$/);
    } finally {
      await recorder.back();
    }
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    expect(await c.verify('nobody@example.com', signal())).toBe('unknown');
    expect(recorder.conversations).toHaveLength(2);
    expect(recorder.conversations[0]?.sent).toEqual([
      'EHLO moat.test',
      ...check('alice@example.com'),
      'MAIL FROM:<>',
      'RCPT TO:<bob@example.com>',
    ]);
    expect(await sent(1)).toEqual([
      'EHLO moat.test',
      ...check('alice@example.com'),
      ...check('nobody@example.com'),
    ]);
  });

  test('a connection killed while idle is replaced without an error', async () => {
    const c = callout();
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    await recorder.kill();
    await recorder.back();
    expect(await c.verify('bob@example.com', signal())).toBe('known');
    expect(recorder.conversations).toHaveLength(2);
  });

  test('the server shutting down (421 to an idle connection): the next check reconnects', async () => {
    const second = await startSmtpSink({ onRcpt: rcptAnswer });
    recorder.target = second.port;
    const c = callout();
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    // Idle: the RSET answered too (EHLO, MAIL, RCPT, RSET: four final 250 lines).
    await until(
      () => (recorder.conversations[0]?.received ?? []).filter((line) => /^250 /.test(line)).length === 4,
      'the RSET reply',
    );
    await second.close(); // smtp-server: 421 to open connections after its closeTimeout (1 s)
    await until(() => /^421 /.test(recorder.conversations[0]?.received.at(-1) ?? ''), 'the 421');
    await until(() => recorder.conversations[0]?.clientEnded === true, 'the callout closing its side');
    recorder.target = sink.port;
    expect(await c.verify('nobody@example.com', signal())).toBe('unknown');
    expect(recorder.conversations).toHaveLength(2);
    expect(await sent(1)).toEqual(['EHLO moat.test', ...check('nobody@example.com')]);
  });

  test("a hung server: throws by the signal's deadline, or after timeoutMs; then a fresh connection", async () => {
    const c = callout({ timeoutMs: 400 });
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    await sent(0);
    recorder.hold = true;
    let started = Date.now();
    expect((await failure(c.verify('bob@example.com', AbortSignal.timeout(150)))).message).toBe(
      `smtp callout at 127.0.0.1:${recorder.port}: no answer in time`,
    );
    expect(Date.now() - started).toBeLessThan(350);
    // timeoutMs bounds each reply even when the signal is generous.
    started = Date.now();
    expect((await failure(c.verify('bob@example.com', signal()))).message).toMatch(/: no reply in time$/);
    expect(Date.now() - started).toBeLessThan(1500);
    recorder.hold = false;
    expect(await c.verify('bob@example.com', signal())).toBe('known');
    expect(recorder.conversations).toHaveLength(3);
  });

  test('a check still queued when its deadline passes is dropped, not sent', async () => {
    const c = callout();
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    await sent(0);
    recorder.hold = true;
    const first = failure(c.verify('bob@example.com', AbortSignal.timeout(200)));
    const queued = failure(c.verify('nobody@example.com', AbortSignal.timeout(100)));
    expect((await queued).message).toMatch(/no answer in time$/);
    expect((await first).message).toMatch(/no answer in time$/);
    recorder.hold = false;
    // bob's check had started (and was cut off at its deadline); nobody's never did.
    expect(recorder.conversations[0]?.sent).toEqual([
      'EHLO moat.test',
      ...check('alice@example.com'),
      'MAIL FROM:<>',
    ]);
  });

  test('idle: QUIT after idleMs, and the next check opens a new connection', async () => {
    const c = callout({ idleMs: 150 });
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    await sleep(60);
    expect(await c.verify('bob@example.com', signal())).toBe('known'); // re-arms the timer
    await until(() => recorder.conversations[0]?.clientEnded === true, 'the idle close');
    const [first] = recorder.conversations;
    expect(first?.sent).toEqual([
      'EHLO moat.test',
      ...check('alice@example.com'),
      ...check('bob@example.com'),
      'QUIT',
    ]);
    expect(first?.received.at(-1)).toMatch(/^221 /);
    expect(await c.verify('nobody@example.com', signal())).toBe('unknown');
    expect(recorder.conversations).toHaveLength(2);
  });

  test('close(): QUIT, then checks throw', async () => {
    const c = callout();
    expect(await c.verify('alice@example.com', signal())).toBe('known');
    await c.close();
    await until(() => recorder.conversations[0]?.clientEnded === true, 'the close');
    expect(recorder.conversations[0]?.sent.at(-1)).toBe('QUIT');
    expect((await failure(c.verify('alice@example.com', signal()))).message).toMatch(/: closed$/);
  });
});

describe('ReplyParser', () => {
  test('single and multi-line replies, split anywhere, a bare code', () => {
    const parser = new ReplyParser();
    expect(parser.push('220 mx.test ESMTP\r\n250-mx.test he')).toEqual([
      { code: 220, text: 'mx.test ESMTP' },
    ]);
    expect(parser.push('llo\r\n250-SIZE 100\r\n250 STARTTLS\r')).toEqual([]);
    expect(parser.push('\n250\r\n')).toEqual([
      { code: 250, text: 'mx.test hello\nSIZE 100\nSTARTTLS' },
      { code: 250, text: '' },
    ]);
  });

  test.each(['hello\r\n', '25 x\r\n', '250x\r\n', '250-a\r\n251 b\r\n'])('garbage %j throws', (text) => {
    expect(() => new ReplyParser().push(text)).toThrow();
  });
});
