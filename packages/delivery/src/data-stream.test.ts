import { Readable } from 'node:stream';
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

async function through(chunks: Buffer[]): Promise<string> {
  const out: Buffer[] = [];
  const stream = Readable.from(chunks).pipe(new DataStream());
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

test('matches the original algorithm on random bodies split into random chunks', async () => {
  let seed = 7;
  const next = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed;
  };
  const alphabet = ['a', 'b', '.', '.', '\r\n', '\r\n', '\r', '\n', ' '];
  for (let n = 0; n < 400; n++) {
    const text = Array.from({ length: 1 + (next() % 60) }, () => alphabet[next() % alphabet.length]).join('');
    const bytes = Buffer.from(text, 'latin1');
    const chunks: Buffer[] = [];
    for (let at = 0; at < bytes.length; ) {
      const size = 1 + (next() % 8);
      chunks.push(bytes.subarray(at, at + size));
      at += size;
    }
    expect(await through(chunks), JSON.stringify(text)).toBe(reference(text));
  }
});
