/**
 * delivery.bodyCache: a body the edge of this process handed over is delivered from memory,
 * byte for byte, and forgotten once its message is released; any other body is read from Redis.
 */

import { expect, test } from 'vitest';
import { BodyCache } from './body-cache.js';
import { useHarness } from './test-harness.js';

const fx = useHarness();

const message = (n: number) =>
  Buffer.from(`From: <a@example.net>\r\nSubject: ${n}\r\n\r\n.dot first\r\n${'x'.repeat(70)}\r\n`);
const CLIENT = { ip: '127.0.0.1', helo: 'client.test', user: null, tls: false };

test('a handed-over body is delivered from memory and dropped after; another is read from Redis', async () => {
  const sink = await fx.sink({ tls: false });
  const bodies = new BodyCache({ budget: 1 << 20, ttl: 60_000 });
  const running = await fx.h.start(
    { inbound: { domains: { 'example.com': `[127.0.0.1]:${sink.port}` } } },
    { bodies },
  );
  const routes = [{ routeId: `[127.0.0.1]:${sink.port}`, recipients: ['bob@example.com'] }];
  // In memory before its job exists, as the edge hands it over once the message is durable.
  const kept = running.spool.newMessageId();
  bodies.put(kept, message(1));
  await running.spool.enqueue({
    id: kept,
    sender: 'a@example.net',
    routes,
    body: message(1),
    client: CLIENT,
  });
  await sink.waitForMessages(1, 10_000);
  await running.spool.enqueue({ sender: 'a@example.net', routes, body: message(2), client: CLIENT });
  const got = await sink.waitForMessages(2, 10_000);
  expect(got.map((m) => m.raw.toString('latin1'))).toEqual([message(1), message(2)].map(String));
  expect([bodies.hits, bodies.misses]).toEqual([1, 1]);
  // Released (delivered on its one route): gone from memory as from Redis.
  await expect.poll(() => bodies.bytes, { timeout: 5000 }).toBe(0);
  expect(await running.spool.readBody(kept)).toBeNull();
});

test('a body no job takes goes after its ttl, with no delivery to prompt it', async () => {
  const bodies = new BodyCache({ budget: 1 << 20, ttl: 100 });
  await fx.h.start({}, { bodies });
  // A message whose queueing failed after the handover, say: no job will ever ask for it.
  bodies.put('never-queued', message(3));
  expect(bodies.bytes).toBeGreaterThan(0);
  await expect.poll(() => bodies.bytes, { timeout: 5000 }).toBe(0);
  expect([bodies.hits, bodies.misses]).toEqual([0, 0]);
});
