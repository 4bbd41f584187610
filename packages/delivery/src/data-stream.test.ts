import { Readable, type TransformOptions } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { expect, test } from 'vitest';

// Moat patches nodemailer's DataStream (patches/nodemailer@10.6.1.patch) with a fast path for
// chunks that are already CRLF-only. Its output must stay exactly what the original byte loop
// produces: CRLF line endings, line-leading dots stuffed, and the terminating CRLF.CRLF.
function reference(input: string): string {
  const crlf = input.replace(/\r\n|\r|\n/g, '\r\n');
  const stuffed = crlf.replace(/(^|\r\n)\./g, '$1..');
  return stuffed.endsWith('\r\n') ? `${stuffed}.\r\n` : `${stuffed}\r\n.\r\n`;
}

async function through(chunks: Buffer[], options: { crlf?: boolean } = {}): Promise<string> {
  const out: Buffer[] = [];
  // crlf is the patch's option (SMTPEnvelope.crlf passes it); DataStream's own types predate it.
  const stream = Readable.from(chunks).pipe(new DataStream(options as TransformOptions));
  for await (const piece of stream) out.push(piece as Buffer);
  return Buffer.concat(out).toString('latin1');
}

test('a CRLF-only message is dot-stuffed and terminated', async () => {
  const body = 'Subject: x\r\n\r\n.hidden\r\nline\r\n..two\r\n.\r\nend\r\n';
  expect(await through([Buffer.from(body)])).toBe(reference(body));
  expect(await through([Buffer.from(body)])).toBe(
    'Subject: x\r\n\r\n..hidden\r\nline\r\n...two\r\n..\r\nend\r\n.\r\n',
  );
});

/** 400 random bodies made of `alphabet`, each split into random chunks of 1 to 8 bytes. */
function* randomBodies(seed: number, alphabet: readonly string[]): Generator<[string, Buffer[]]> {
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  for (let n = 0; n < 400; n++) {
    const text = Array.from({ length: 1 + (next() % 60) }, () => alphabet[next() % alphabet.length]).join('');
    const bytes = Buffer.from(text, 'latin1');
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; ) {
      const size = 1 + (next() % 8);
      chunks.push(bytes.subarray(at, at + size));
      at += size;
    }
    yield [text, chunks];
  }
}

test('matches the original algorithm on random bodies split into random chunks', async () => {
  for (const [text, chunks] of randomBodies(7, ['a', 'b', '.', '.', '\r\n', '\r\n', '\r', '\n', ' '])) {
    expect(await through(chunks), JSON.stringify(text)).toBe(reference(text));
  }
});

test('crlf (a body known to have CRLF endings only): dots are still stuffed the same, across chunk seams', async () => {
  for (const [text, chunks] of randomBodies(11, ['a', 'b', '.', '.', '\r\n', '\r\n', ' '])) {
    expect(await through(chunks, { crlf: true }), JSON.stringify(text)).toBe(reference(text));
  }
});

test('crlf skips the search for bare endings: the sender vouches for the body (the edge made it canonical)', async () => {
  // Not a use: the delivery sets crlf only for bodies the edge made canonical. This shows the
  // flag reaches the fast path, which passes what it is given.
  const body = Buffer.from('a\nb\r\n');
  expect(await through([body], { crlf: true })).toBe('a\nb\r\n.\r\n');
  expect(await through([body])).toBe('a\r\nb\r\n.\r\n');
});
