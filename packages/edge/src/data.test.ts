import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { HEADROOM, ownsItsMemory, prepend, readData } from './data.js';

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

describe('ownsItsMemory', () => {
  test('a body from readData, and after prepend: its memory holds nothing else, so it may move', async () => {
    const { body } = await readData(streamOf('Subject: a\r\n\r\n', 'text\r\n'), 100);
    if (body === null) throw new Error('no body');
    expect(ownsItsMemory(body)).toBe(true);
    const out = prepend(Buffer.from('Received: x\r\n'), body);
    expect(ownsItsMemory(out)).toBe(true);
    // Moving it (a transfer to another thread) leaves the bytes intact on the other side.
    const { port1, port2 } = new MessageChannel();
    const moved = new Promise<Uint8Array>((resolve) => port2.once('message', resolve));
    const view = new Uint8Array(out.buffer, out.byteOffset, out.length);
    port1.postMessage(view, [out.buffer as ArrayBuffer]);
    expect(Buffer.from(await moved).toString('latin1')).toBe('Received: x\r\nSubject: a\r\n\r\ntext\r\n');
    port1.close();
  });

  test('not for memory shared with others: a pooled Buffer, a slice, a concatenation, a body already prepended to', async () => {
    expect(ownsItsMemory(Buffer.from('m\r\n'))).toBe(false);
    expect(ownsItsMemory(Buffer.alloc(100_000))).toBe(false);
    const { body } = await readData(streamOf('Subject: a\r\n\r\ntext\r\n'), 100);
    if (body === null) throw new Error('no body');
    expect(ownsItsMemory(body.subarray(0, 10))).toBe(false);
    expect(ownsItsMemory(Buffer.concat([Buffer.from('H: 1\r\n'), body]))).toBe(false);
    prepend(Buffer.from('R: 1\r\n'), body);
    // Its room now belongs to the prepended result.
    expect(ownsItsMemory(body)).toBe(false);
  });
});
