/**
 * Read a DATA stream with a size bound: keep at most `max` bytes, drain (and count) the rest,
 * so a 1 GB stream costs no more memory than the limit. The chunks are copied once, into a
 * buffer with room left in front of the message, where the fields the edge adds (Received:,
 * the filters' results, DKIM-Signature) are written by `prepend` without copying the body
 * again: at 1 MB each copy is about 0.4 ms of the edge's CPU (a V8 profile, docs/benchmarks.md).
 */
import type { Readable } from 'node:stream';

/** Bytes kept free in front of a body read by readData. */
export const HEADROOM = 8192;

/** Bodies whose bytes before them (down to their ArrayBuffer's start) are free for prepend. */
const withRoom = new WeakSet<Buffer>();

export interface DataResult {
  /** The message, or null when it passed the limit. */
  readonly body: Buffer | null;
  readonly size: number;
}

export function readData(stream: Readable, max: number): Promise<DataResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (over) return;
      if (size > max) {
        over = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    stream.once('end', () => resolve({ body: over ? null : joinWithRoom(chunks, size), size }));
    stream.once('error', reject);
  });
}

function joinWithRoom(chunks: readonly Buffer[], size: number): Buffer {
  // Never from the shared pool: the room in front must belong to this body alone.
  const whole = Buffer.allocUnsafeSlow(HEADROOM + size);
  let at = HEADROOM;
  for (const chunk of chunks) at += chunk.copy(whole, at);
  const body = whole.subarray(HEADROOM);
  withRoom.add(body);
  return body;
}

/**
 * Whether the body's ArrayBuffer holds this body and its free room in front, and nothing else
 * (a body from readData or prepend): moving that memory elsewhere (a transfer to another
 * thread) takes nothing from anyone else.
 */
export function ownsItsMemory(body: Buffer): boolean {
  return withRoom.has(body) && body.byteOffset + body.length === body.buffer.byteLength;
}

/**
 * `head` followed by `body`. When the body came from readData and still has room in front,
 * the head is written there and the body is not copied; the result has the rest of the room,
 * and the body passed in has none any more (a second prepend to it must not overwrite the
 * first one's head). Any other body is concatenated.
 */
export function prepend(head: Buffer, body: Buffer): Buffer {
  if (head.length === 0) return body;
  if (!withRoom.has(body) || head.length > body.byteOffset) return Buffer.concat([head, body]);
  withRoom.delete(body);
  const start = body.byteOffset - head.length;
  const out = Buffer.from(body.buffer, start, head.length + body.length);
  head.copy(out, 0);
  withRoom.add(out);
  return out;
}
