/**
 * The clamd client against a real clamd (Debian's, the testkit's test database of one EICAR
 * signature, StreamMaxLength 1 MB so the size limit is cheap to reach, TCP and a Unix socket),
 * and its answer parser.
 */
import { CLAMD_EICAR_SIGNATURE, type Clamd, EICAR, startClamd } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parseClamdReply, pingClamd, scanWithClamd } from './clamd.js';

let clamd: Clamd;
beforeAll(async () => {
  clamd = await startClamd({ streamMaxLength: '1M', localSocket: true });
});
afterAll(async () => {
  await clamd?.stop();
});

const address = () => ({ host: clamd.host, port: clamd.port });
const signal = () => AbortSignal.timeout(10_000);

const socket = () => {
  if (!clamd.socketPath) throw new Error('the fixture was started without localSocket');
  return { path: clamd.socketPath };
};

// clamd on the same host is usually reached on its Unix socket (Debian: /run/clamav/clamd.ctl).
describe.each([
  ['TCP', address],
  ['a Unix socket', socket],
] as const)('scanWithClamd over %s (real clamd)', (_, at) => {
  test('a clean message is clean; PING answers', async () => {
    expect(await scanWithClamd(at(), Buffer.from('Subject: hi\r\n\r\nhello\r\n'), signal())).toEqual({
      status: 'clean',
    });
    await pingClamd(at(), signal());
  });

  test('EICAR is found and named', async () => {
    expect(await scanWithClamd(at(), Buffer.from(EICAR), signal())).toEqual({
      status: 'infected',
      signature: CLAMD_EICAR_SIGNATURE,
    });
  });
});

describe('scanWithClamd (real clamd)', () => {
  test('EICAR is found across chunk boundaries of a large message', async () => {
    // The message is sent in 64 KiB chunks without copying: the attachment spans two.
    const attachment = Buffer.from(EICAR).toString('base64');
    const padding = 'x'.repeat(64 * 1024 - 300);
    const message = Buffer.from(
      `MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n${padding}\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n${attachment}\r\n--b--\r\n`,
    );
    expect(await scanWithClamd(address(), message, signal())).toMatchObject({ status: 'infected' });
  });

  // clamd answers "size limit exceeded" and closes with our chunks unread; a chunk written in
  // that moment makes the kernel reset the connection and clamd's answer is lost (about 1 in
  // 25 at 5 MB here). So past StreamMaxLength the result is oversize, or an error (onError
  // decides): never clean. clamav.maxSize at or below StreamMaxLength avoids the race.
  test("past clamd's StreamMaxLength: oversize or an error, never clean", async () => {
    const outcomes = new Set<string>();
    for (const mb of [2, 3, 5]) {
      const big = Buffer.alloc(mb * 1024 * 1024, 'a');
      for (let i = 0; i < 5; i++) {
        const outcome = await scanWithClamd(address(), big, signal()).then(
          (r) => (r.status === 'oversize' && r.size === big.length ? 'oversize' : JSON.stringify(r)),
          (err: Error) =>
            /^clamd at [\d.:]+: (EPIPE|ECONNRESET)$/.test(err.message) ? 'reset' : err.message,
        );
        outcomes.add(outcome);
      }
    }
    expect([...outcomes].filter((o) => o !== 'oversize' && o !== 'reset')).toEqual([]);
    expect(outcomes.has('oversize')).toBe(true);
  });

  test('clamd down: a DaemonError naming it, not a verdict', async () => {
    await expect(scanWithClamd({ host: '127.0.0.1', port: 1 }, Buffer.from('x'), signal())).rejects.toThrow(
      /^clamd at 127\.0\.0\.1:1: ECONNREFUSED$/,
    );
  });

  test('clamd hung (SIGSTOP): the signal ends the wait', async () => {
    clamd.pause();
    try {
      const started = Date.now();
      await expect(scanWithClamd(address(), Buffer.from('x'), AbortSignal.timeout(300))).rejects.toThrow(
        /no answer in time/,
      );
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      clamd.resume();
    }
  });
});

describe('scanWithClamd over a Unix socket (real clamd)', () => {
  test('no socket at the path: a DaemonError naming the path, not a verdict', async () => {
    const missing = `${socket().path}.missing`;
    await expect(scanWithClamd({ path: missing }, Buffer.from('x'), signal())).rejects.toThrow(
      `clamd at ${missing}: ENOENT`,
    );
  });
});

describe('parseClamdReply', () => {
  test.each([
    ['stream: OK\0', { status: 'clean' }],
    ['stream: Win.Test.EICAR_HDB-1 FOUND\0', { status: 'infected', signature: 'Win.Test.EICAR_HDB-1' }],
    ['INSTREAM size limit exceeded. ERROR\0', { status: 'oversize', size: 5 }],
  ])('%j', (reply, result) => {
    expect(parseClamdReply(reply, 5)).toEqual(result);
  });

  test.each(['', 'stream: ', "Can't allocate memory ERROR\0", 'PONG\0', 'stream: FOUND'])(
    'garbage %j throws',
    (reply) => {
      expect(() => parseClamdReply(reply, 5)).toThrow(/^clamd answered/);
    },
  );
});
