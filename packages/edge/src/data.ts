/**
 * Read a DATA stream with a size bound: keep at most `max` bytes, drain (and count) the rest,
 * so a 1 GB stream costs no more memory than the limit.
 */
import type { Readable } from 'node:stream';

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
    stream.once('end', () => resolve({ body: over ? null : Buffer.concat(chunks, size), size }));
    stream.once('error', reject);
  });
}
