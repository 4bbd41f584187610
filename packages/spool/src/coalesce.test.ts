import { once } from 'node:events';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import { expect, test } from 'vitest';
import { coalesceWrites } from './coalesce.js';
import { useRedis } from './test-redis.js';

const r = useRedis();

/** A loopback peer that keeps what it reads, and a client that counts its socket writes. */
async function peer() {
  let received = '';
  const srv = createServer((s) =>
    s.on('data', (d) => {
      received += String(d);
    }),
  );
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const address = srv.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const client = tcpConnect(address.port, '127.0.0.1');
  await once(client, 'connect');
  // Node hands each write to the kernel through _write (one chunk) or _writev (many).
  const internals = client as unknown as Record<'_write' | '_writev', (...a: unknown[]) => unknown>;
  const writes = { count: 0 };
  for (const name of ['_write', '_writev'] as const) {
    const original = internals[name];
    internals[name] = function (this: Socket, ...a: unknown[]) {
      writes.count++;
      return original.apply(this, a);
    };
  }
  const close = async () => {
    await new Promise((r) => setTimeout(r, 50));
    client.destroy();
    srv.close();
    await once(srv, 'close');
    return received;
  };
  return { client, writes, close };
}

/**
 * Three writes in one tick (from promise callbacks, as Moat's Redis commands are issued), then
 * one more after a timer.
 */
async function writeFour(client: Socket) {
  await Promise.resolve().then(async () => {
    client.write('one ');
    await Promise.resolve();
    client.write('two ');
    queueMicrotask(() => client.write('three '));
  });
  await new Promise((r) => setTimeout(r, 20));
  client.write('four');
}

test('writes in one tick leave as one write, in order; the next tick writes again', async () => {
  const { client, writes, close } = await peer();
  coalesceWrites(client);
  await writeFour(client);
  expect(await close()).toBe('one two three four');
  expect(writes.count).toBe(2);
});

test('control: the same writes without coalescing are one write each', async () => {
  const { client, writes, close } = await peer();
  await writeFour(client);
  expect(await close()).toBe('one two three four');
  expect(writes.count).toBe(4);
});

test('Moat connections coalesce: 200 commands from one tick all answer, in order', async () => {
  const key = 'coalesce:counter';
  const replies = await Promise.all(Array.from({ length: 200 }, () => r.redis.incr(key)));
  expect(replies).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
  // The socket is corked only until the tick drains: a later command is not held back.
  expect(await r.redis.get(key)).toBe('200');
});
