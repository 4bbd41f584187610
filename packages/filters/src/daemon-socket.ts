/**
 * One request/reply exchange with a scanner daemon over TCP or a Unix socket (clamd, spamd):
 * connect, let the caller write, read until the daemon closes (both protocols end their
 * answer that way), all bounded by an AbortSignal. Any failure is a DaemonError naming the
 * daemon, so the edge can log it and apply the filter's onError.
 */
import { connect, type Socket } from 'node:net';
import type { DaemonAddress } from '@moat/policy';

export class DaemonError extends Error {
  override readonly name = 'DaemonError';
}

export function describeAddress(address: DaemonAddress): string {
  return 'path' in address ? address.path : `${address.host}:${address.port}`;
}

/**
 * Writes `chunks` in order, one group at a time, each handed to the kernel before the next
 * (the buffers are never copied), with a turn of the event loop between them to read what the
 * daemon said. It stops as soon as the daemon has answered: clamd answers "size limit
 * exceeded" and closes while the rest is unsent, and writing on would turn its answer into a
 * reset. A group is written with one system call (cork).
 */
export async function writeAll(socket: Socket, groups: Iterable<readonly Buffer[]>): Promise<void> {
  for (const group of groups) {
    if (socket.destroyed || socket.bytesRead > 0) return;
    await new Promise<void>((resolve) => {
      socket.cork();
      group.forEach((chunk, i) => {
        if (i === group.length - 1) socket.write(chunk, () => resolve());
        else socket.write(chunk);
      });
      socket.uncork();
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Connects, runs `send`, and resolves with every byte the daemon sent until it closed its side.
 * A daemon that closes without answering, resets, or outlives the signal rejects.
 */
export function exchange(
  name: string,
  address: DaemonAddress,
  signal: AbortSignal,
  send: (socket: Socket) => Promise<void>,
  /** Whether the answer is whole already (clamd's ends in NUL), so the close need not be awaited. */
  complete: (reply: Buffer) => boolean = () => false,
  maxReply = 1024 * 1024,
): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const where = describeAddress(address);
    const socket = 'path' in address ? connect(address.path) : connect(address.port, address.host);
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (err: Error | null) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onAbort = () => finish(new DaemonError(`${name} at ${where}: no answer in time`));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxReply)
        return finish(new DaemonError(`${name} at ${where}: reply larger than ${maxReply} bytes`));
      chunks.push(chunk);
      if (complete(chunk)) finish(null);
    });
    // A write error after the daemon answered (EPIPE, ECONNRESET: it stopped reading and
    // closed) ends the exchange with that answer; before any answer it is a failure.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (chunks.length > 0) return finish(null);
      finish(new DaemonError(`${name} at ${where}: ${err.code ?? err.message}`));
    });
    socket.on('end', () =>
      finish(size === 0 ? new DaemonError(`${name} at ${where}: closed without an answer`) : null),
    );
    socket.once('connect', () => {
      send(socket).then(
        () => {},
        (err: unknown) => finish(new DaemonError(`${name} at ${where}: ${(err as Error).message}`)),
      );
    });
  });
}
