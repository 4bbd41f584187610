import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { HEADROOM, prepend, readData } from './data.js';

const streamOf = (...chunks: string[]) => Readable.from(chunks.map((c) => Buffer.from(c, 'latin1')));

describe('readData', () => {
  test('joins the chunks into one body', async () => {
    const { body, size } = await readData(streamOf('Subject: a\r\n', '\r\n', 'body\r\n'), 100);
    expect(body?.toString('latin1')).toBe('Subject: a\r\n\r\nbody\r\n');
    expect(size).toBe(20);
  });

  test('past the limit: no body, every byte still read and counted', async () => {
    const stream = streamOf('x'.repeat(60), 'y'.repeat(60), 'z'.repeat(60));
    const { body, size } = await readData(stream, 100);
    expect(body).toBeNull();
    expect(size).toBe(180);
    expect(stream.readableEnded).toBe(true);
  });
});

describe('prepend', () => {
  test('writes the head into the room in front of a body from readData: the body is not copied', async () => {
    const { body } = await readData(streamOf('Subject: a\r\n\r\n', 'text\r\n'), 100);
    if (body === null) throw new Error('no body');
    const out = prepend(Buffer.from('Received: x\r\n'), body);
    expect(out.toString('latin1')).toBe('Received: x\r\nSubject: a\r\n\r\ntext\r\n');
    expect(out.buffer).toBe(body.buffer);
    expect(out.byteOffset + out.length).toBe(body.byteOffset + body.length);
  });

  test('a second head goes in front of the first, in what room is left (DKIM-Signature after Received:)', async () => {
    const { body } = await readData(streamOf('m\r\n'), 100);
    if (body === null) throw new Error('no body');
    const received = prepend(Buffer.from('R: 1\r\n'), body);
    const signed = prepend(Buffer.from('D: 2\r\n'), received);
    expect(signed.toString('latin1')).toBe('D: 2\r\nR: 1\r\nm\r\n');
    expect(signed.buffer).toBe(body.buffer);
  });

  test('the same body prepended twice: the second is a copy, and the first result keeps its head', async () => {
    const { body } = await readData(streamOf('m\r\n'), 100);
    if (body === null) throw new Error('no body');
    const first = prepend(Buffer.from('A: 1\r\n'), body);
    const second = prepend(Buffer.from('B: 2\r\n'), body);
    expect(second.buffer).not.toBe(body.buffer);
    expect(second.toString('latin1')).toBe('B: 2\r\nm\r\n');
    expect(first.toString('latin1')).toBe('A: 1\r\nm\r\n');
  });

  test('a head larger than the room, or a body not from readData: concatenated', async () => {
    const { body } = await readData(streamOf('m\r\n'), 100);
    if (body === null) throw new Error('no body');
    const big = Buffer.alloc(HEADROOM + 1, 0x61);
    const out = prepend(big, body);
    expect(out.buffer).not.toBe(body.buffer);
    expect(out.length).toBe(HEADROOM + 4);
    expect(out.subarray(HEADROOM + 1).toString('latin1')).toBe('m\r\n');
    // A pooled Buffer has other buffers' bytes in front of it: never written into.
    const pooled = Buffer.from('m\r\n');
    const neighbour = Buffer.from(pooled.buffer, 0, pooled.byteOffset);
    const before = Buffer.from(neighbour);
    const joined = prepend(Buffer.from('H: 1\r\n'), pooled);
    expect(joined.toString('latin1')).toBe('H: 1\r\nm\r\n');
    expect(neighbour.equals(before)).toBe(true);
  });
});
