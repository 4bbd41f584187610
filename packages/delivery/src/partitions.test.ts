/**
 * Delivery from queue partitions: workers take mail from every partition (or from the ones
 * delivery.partitions names), a paused route holds in every partition, and a worker whose
 * own config has fewer partitions still delivers what an edge placed in more.
 */
import { type MessageMeta, partitionOfId, pauseRoute, resumeRoute, routeStatus, Spool } from '@moat/spool';
import { expect, test } from 'vitest';
import { useHarness } from './test-harness.js';

const fx = useHarness();

test('mail placed in 8 partitions is delivered from all of them; pause holds in each', async () => {
  const exchange = await fx.sink();
  const route = `[127.0.0.1]:${exchange.port}`;
  const run = await fx.h.start({
    redis: { partitions: 8 },
    inbound: { domains: { 'example.com': route } },
    delivery: { concurrency: 8 },
  });
  expect(run.service.partitions()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  await pauseRoute(run.spool, route);
  const metas: MessageMeta[] = [];
  for (let i = 0; i < 60; i++) metas.push(await run.send('a@elsewhere.test', [`user${i}@example.com`]));
  expect(new Set(metas.map((m) => partitionOfId(m.id))).size).toBeGreaterThanOrEqual(6);
  await new Promise((r) => setTimeout(r, 800));
  expect(exchange.messages).toHaveLength(0);
  expect((await routeStatus(run.spool, route)).counts.waiting).toBe(60);

  await resumeRoute(run.spool, route);
  const got = await exchange.waitForMessages(60, 30_000);
  expect(new Set(got.flatMap((m) => m.rcptTo)).size).toBe(60);
  for (const m of metas) await expect.poll(() => run.spool.readBody(m.id)).toBeNull();
  const delivered = await run.waitForEvent((e) => e.type === 'delivered' && e.messageId === metas[59]?.id);
  expect(delivered.routeId).toBe(route);
});

test('delivery.partitions: a worker takes only its partitions; one with fewer in its config reads the layout', async () => {
  const exchange = await fx.sink();
  const route = `[127.0.0.1]:${exchange.port}`;
  // This worker's config says 2 partitions and it takes only 0 and 2…4.
  const run = await fx.h.start({
    redis: { partitions: 2 },
    inbound: { domains: { 'example.com': route } },
    delivery: { partitions: [0, '2-4'] },
  });
  expect(run.service.partitions()).toEqual([0, 2]);
  // An edge with 4 partitions places mail in 1…4.
  const edge = new Spool({
    redis: run.spool.redis,
    prefix: run.config.redis.prefix,
    partitions: 4,
    timeout: 5000,
    ack: 'local',
    replicas: 1,
  });
  const ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    const meta = await edge.enqueue({
      sender: 'a@elsewhere.test',
      routes: [{ routeId: route, recipients: [`u${i}@example.com`] }],
      body: Buffer.from(`Subject: ${i}\r\n\r\nhi\r\n`),
      client: { ip: '127.0.0.1', helo: 'edge.test', user: null, tls: false },
    });
    ids.push(meta.id);
  }
  // The worker sees partitions 3 and 4 in the layout at its next scan (harness: every 200 ms).
  await expect.poll(() => run.service.partitions(), { timeout: 5000 }).toEqual([0, 2, 3, 4]);
  const mine = ids.filter((id) => [2, 3, 4].includes(partitionOfId(id)));
  const others = ids.filter((id) => partitionOfId(id) === 1);
  expect(others.length).toBeGreaterThan(0);
  await exchange.waitForMessages(mine.length, 30_000);
  await new Promise((r) => setTimeout(r, 500));
  expect(exchange.messages).toHaveLength(mine.length);
  // Partition 1's mail waits for a worker that takes it.
  for (const id of others) expect(await run.spool.readBody(id)).not.toBeNull();
  await edge.close();
});
