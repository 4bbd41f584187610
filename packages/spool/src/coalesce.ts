/**
 * Write coalescing for a socket: every write made before the process's tick queue drains goes
 * out in one writev. A message's enqueue is two Redis commands (the write script and BullMQ's
 * job add), issued a few promise callbacks apart, and twenty sessions issue theirs in the same
 * pass of the event loop: corked, they cost one system call instead of one each. Nothing waits
 * longer than the current tick; order on the socket is unchanged.
 */
import type { Writable } from 'node:stream';

const coalesced = new WeakSet<Writable>();

export function coalesceWrites(socket: Writable): void {
  if (coalesced.has(socket)) return;
  coalesced.add(socket);
  const write = socket.write;
  let corked = false;
  const flush = () => {
    corked = false;
    socket.uncork();
  };
  socket.write = function (this: Writable, ...args: Parameters<Writable['write']>) {
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(flush);
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args);
  } as Writable['write'];
}
