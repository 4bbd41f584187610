/**
 * ClamAV's clamd over its INSTREAM command: "zINSTREAM\0", then the message in chunks, each
 * after its length as 4 bytes big-endian, then a zero length. The answer is
 * "stream: OK\0", "stream: <signature> FOUND\0", or "<reason> ERROR\0" (among them
 * "INSTREAM size limit exceeded", past clamd's StreamMaxLength). The body is sent as views
 * of the one buffer the edge holds: nothing is copied.
 */
import type { ClamavResult, DaemonAddress } from '@moat/policy';
import { DaemonError, exchange, writeAll } from './daemon-socket.js';

/** clamd reads a chunk at a time; 64 KiB keeps writes few and its buffers small. */
const CHUNK = 64 * 1024;

/** The command, then each chunk after its length; the last group ends with the zero length. */
function* instream(body: Buffer): Generator<Buffer[]> {
  const command = Buffer.from('zINSTREAM\0', 'latin1');
  const end = Buffer.alloc(4);
  if (body.length === 0) return yield [command, end];
  for (let at = 0; at < body.length; at += CHUNK) {
    const piece = body.subarray(at, Math.min(at + CHUNK, body.length));
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(piece.length, 0);
    const group = at === 0 ? [command, length, piece] : [length, piece];
    if (at + CHUNK >= body.length) group.push(end);
    yield group;
  }
}

/** Parses clamd's answer to INSTREAM; anything else is a DaemonError. */
export function parseClamdReply(reply: string, size: number): ClamavResult {
  const text = reply.replace(/\0+$/, '').trim();
  if (text === 'stream: OK') return { status: 'clean' };
  const found = /^stream: (.+) FOUND$/.exec(text);
  if (found?.[1]) return { status: 'infected', signature: found[1] };
  // Our maxSize is above clamd's StreamMaxLength: the same outcome as a message over maxSize.
  if (/size limit exceeded/i.test(text)) return { status: 'oversize', size };
  throw new DaemonError(`clamd answered ${JSON.stringify(text.slice(0, 200))}`);
}

export async function scanWithClamd(
  address: DaemonAddress,
  body: Buffer,
  signal: AbortSignal,
): Promise<ClamavResult> {
  const reply = await exchange(
    'clamd',
    address,
    signal,
    (socket) => writeAll(socket, instream(body)),
    (chunk) => chunk.includes(0),
  );
  return parseClamdReply(reply.toString('latin1'), body.length);
}

/** zPING → PONG: whether clamd answers at all (for /ready). */
export async function pingClamd(address: DaemonAddress, signal: AbortSignal): Promise<void> {
  const reply = await exchange('clamd', address, signal, (socket) =>
    writeAll(socket, [[Buffer.from('zPING\0')]]),
  );
  if (reply.toString('latin1').replace(/\0+$/, '') !== 'PONG')
    throw new DaemonError(
      `clamd answered PING with ${JSON.stringify(reply.toString('latin1').slice(0, 100))}`,
    );
}
