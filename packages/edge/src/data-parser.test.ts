/**
 * smtp-server's DATA parser, as Moat patches it (patches/smtp-server@3.21.6.patch: dots at the
 * start of a line are found with a native search, and the bytes held back at the end of a piece
 * are joined with the next piece only when they can matter): whatever the TCP segmentation, the body that
 * comes out is the one the client meant, the terminator is found exactly once, and what the
 * client sent after it is read as the next command.
 */
import { randomBytes } from 'node:crypto';
import { dotStuff } from '@moat/testkit';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { describe, expect, test } from 'vitest';

const MESSAGES = [
  'Subject: plain\r\n\r\nhello\r\n',
  '.starts with a dot\r\n',
  '.\r\n',
  '..\r\n.\r\n...\r\n',
  'a\r\n.\r\nb\r\n',
  'x\r\n\r\n.\r\n\r\n.. two\r\n.\r\n',
  `Subject: long\r\n\r\n${'y'.repeat(300)}\r\n.${'z'.repeat(40)}\r\n`,
  'bare\nline feeds\n.and a dot after one\r\n',
  // A dot first in DATA, then a line long enough that the piece after a cut just behind the
  // dot is read without joining the held-back bytes, unless they are the start of DATA.
  `.${'w'.repeat(100)}\r\n`,
];

/** Runs one DATA transaction through a parser, written in the given chunks. */
async function parse(chunks: readonly Buffer[]): Promise<{ body: string; commands: string[] }> {
  const parser = new SMTPStream();
  const commands: string[] = [];
  let body: Promise<string> = Promise.resolve('(no DATA)');
  parser.oncommand = (command: Buffer, done?: () => void) => {
    const line = command.toString('latin1');
    if (line === 'DATA') {
      const stream = parser.startDataMode();
      const parts: Buffer[] = [];
      stream.on('data', (c: Buffer) => parts.push(c));
      body = new Promise((resolve) =>
        stream.on('end', () => {
          resolve(Buffer.concat(parts).toString('latin1'));
          parser.continue();
        }),
      );
    } else {
      commands.push(line);
    }
    done?.();
  };
  for (const chunk of chunks) await new Promise<void>((resolve) => parser.write(chunk, () => resolve()));
  await new Promise<void>((resolve) => parser.end(() => resolve()));
  return { body: await body, commands };
}

function transaction(message: string): Buffer {
  return Buffer.concat([
    Buffer.from('DATA\r\n'),
    dotStuff(Buffer.from(message, 'latin1')),
    Buffer.from('.\r\nQUIT\r\n'),
  ]);
}

/** The same bytes cut at the given offsets. */
function cut(bytes: Buffer, offsets: readonly number[]): Buffer[] {
  const points = [0, ...[...offsets].sort((a, b) => a - b), bytes.length];
  return points.slice(1).map((end, i) => bytes.subarray(points[i], end));
}

describe('DATA parser (patched smtp-server)', () => {
  test.each(MESSAGES.map((m, i) => [i, m] as const))(
    'message %i, cut in two at every offset',
    async (_, message) => {
      const bytes = transaction(message);
      for (let at = 1; at < bytes.length; at++) {
        const { body, commands } = await parse(cut(bytes, [at]));
        expect({ at, body, commands }).toEqual({ at, body: message, commands: ['QUIT'] });
      }
    },
  );

  test('one byte at a time, and random cuts in many pieces', async () => {
    const message = MESSAGES.join('');
    const bytes = transaction(message);
    const oneByOne = await parse(
      cut(
        bytes,
        Array.from({ length: bytes.length - 1 }, (_, i) => i + 1),
      ),
    );
    expect(oneByOne).toEqual({ body: message, commands: ['QUIT'] });
    for (let round = 0; round < 200; round++) {
      const offsets = [...randomBytes(6)].map((b) => 1 + Math.floor((b / 256) * (bytes.length - 1)));
      const { body, commands } = await parse(cut(bytes, [...new Set(offsets)]));
      expect({ offsets, body, commands }).toEqual({ offsets, body: message, commands: ['QUIT'] });
    }
  });

  test('pieces of 64 bytes and more, cut anywhere: held-back bytes written as they are or joined, the same body', async () => {
    // The patch writes the 4 bytes held back from a piece as they are when they cannot be part
    // of a line-leading dot, and joins them with the next piece only when they can: this cuts
    // a body full of dot lines, bare line feeds and CRs at every kind of place, into pieces long
    // enough to take either way.
    const message = Array.from({ length: 40 }, (_, i) => MESSAGES[i % MESSAGES.length]).join('');
    const bytes = transaction(message);
    for (let round = 0; round < 300; round++) {
      const offsets: number[] = [];
      for (
        let at = 64 + (randomBytes(1)[0] ?? 0);
        at < bytes.length - 64;
        at += 64 + (randomBytes(1)[0] ?? 0)
      ) {
        offsets.push(at);
      }
      const { body, commands } = await parse(cut(bytes, offsets));
      expect({ offsets, body, commands }).toEqual({ offsets, body: message, commands: ['QUIT'] });
    }
  });

  test('a large body with many dot lines comes out whole', async () => {
    const lines = Array.from({ length: 20_000 }, (_, i) =>
      i % 7 === 0 ? `.${i}` : randomBytes(30).toString('hex'),
    );
    const message = `${lines.join('\r\n')}\r\n`;
    const bytes = transaction(message);
    const chunks = cut(
      bytes,
      Array.from({ length: Math.floor(bytes.length / 65536) }, (_, i) => (i + 1) * 65536),
    );
    expect(await parse(chunks)).toEqual({ body: message, commands: ['QUIT'] });
  });
});
