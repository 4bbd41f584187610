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

/** Writes `chunks` in order, waiting for the socket to drain, without copying them. */
export async function writeAll(socket: Socket, chunks: Iterable<Buffer>): Promise<void> {
  for (const chunk of chunks) {
    if (socket.destroyed) return;
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
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
    });
    // A write error (EPIPE: the daemon stopped reading) is not the end: its reply may follow.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' && chunks.length > 0) return;
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
