import { Heartbeat, RecipientCache, routeStatus } from '@moat/spool';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH, deferJobs, type Fixture, INBOUND, queueMail, READ, startFixture } from './test-app.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture();
});
afterAll(() => fx.close());

describe('routes', () => {
  test('GET /routes lists configured routes and routes with mail, with counts and domains', async () => {
    const { app, spool } = await fx.app();
    const m = await queueMail(spool, 'a@example.org', {
      [INBOUND]: ['x@example.com'],
      'old-route': ['y@example.org'],
    });
    await deferJobs(spool, fx.workerRedis, INBOUND, 1);
    const r = await app.inject({ url: '/routes', headers: AUTH });
    expect(r.statusCode).toBe(200);
    const routes = r.json().routes;
    expect(routes.map((x: { routeId: string }) => x.routeId)).toEqual([
      '[10.0.0.5]:2525',
      INBOUND,
      'mx',
      'old-route',
    ]);
    expect(routes[1]).toEqual({
      routeId: INBOUND,
      configured: true,
      domains: ['example.com'],
      hosts: [INBOUND],
      paused: false,
      counts: { waiting: 0, active: 0, deferred: 1, held: 0, failed: 0 },
      oldestQueuedAt: m.receivedAt,
      oldestAgeSeconds: expect.any(Number),
    });
    expect(routes[0]).toMatchObject({
      domains: ['*.example.net'],
      hosts: ['[10.0.0.5]:2525'],
      oldestQueuedAt: null,
    });
    expect(routes[2]).toMatchObject({ routeId: 'mx', domains: ['*'], hosts: [] });
    expect(routes[3]).toMatchObject({ configured: false, counts: { waiting: 1 } });
  });

  test('pause and resume are kept in Redis, where every worker sees them', async () => {
    const { app, spool } = await fx.app();
    const path = `/routes/${encodeURIComponent(INBOUND)}`;
    const paused = await app.inject({ method: 'POST', url: `${path}/pause`, headers: AUTH });
    expect(paused.statusCode).toBe(200);
    expect(paused.json()).toMatchObject({ routeId: INBOUND, paused: true });
    expect((await routeStatus(spool, INBOUND)).paused).toBe(true);
    const list = await app.inject({ url: '/routes', headers: AUTH });
    expect(list.json().routes.find((x: { routeId: string }) => x.routeId === INBOUND).paused).toBe(true);

    const resumed = await app.inject({ method: 'POST', url: `${path}/resume`, headers: AUTH });
    expect(resumed.json().paused).toBe(false);
    expect((await routeStatus(spool, INBOUND)).paused).toBe(false);
  });

  test('an unknown route is 404, so a typo pauses nothing', async () => {
    const { app } = await fx.app();
    const r = await app.inject({ method: 'POST', url: '/routes/%5B192.168.1.25%5D/pause', headers: AUTH });
    expect(r.statusCode).toBe(404);
    expect(r.json().message).toContain('no route "[192.168.1.25]"');
  });
});

describe('nodes', () => {
  test('GET /nodes lists live heartbeats with roles, version, Node.js version, uptime and stats', async () => {
    const { app, spool } = await fx.app();
    const startedAt = Date.now() - 90_000;
    const beat = new Heartbeat(fx.redis, spool.keys, () => ({
      id: 'edge1:42',
      hostname: 'edge1',
      pid: 42,
      roles: ['edge'],
      version: '0.1.0',
      nodeVersion: 'v24.22.3',
      startedAt,
      stats: { sessions: 3, rssBytes: 1000 },
    }));
    await beat.beat();
    const r = await app.inject({ url: '/nodes', headers: AUTH });
    expect(r.json().nodes).toEqual([
      {
        id: 'edge1:42',
        hostname: 'edge1',
        pid: 42,
        roles: ['edge'],
        version: '0.1.0',
        nodeVersion: 'v24.22.3',
        startedAt,
        lastSeen: expect.any(Number),
        uptimeSeconds: 90,
        stats: { sessions: 3, rssBytes: 1000 },
      },
    ]);
    await beat.stop();
    expect((await app.inject({ url: '/nodes', headers: AUTH })).json().nodes).toEqual([]);
  });
});

describe('recipient cache', () => {
  test('GET lists by address, domain or all; DELETE flushes (admin scope only)', async () => {
    const { app, spool } = await fx.app();
    const cache = new RecipientCache(spool.redis, spool.keys);
    await cache.set('alice@example.com', 'known', 7 * 86_400_000);
    await cache.set('zed@example.com', 'unknown', 7_200_000);
    await cache.set('carol@example.org', 'known', 86_400_000);
    const list = async (q: string) =>
      (await app.inject({ url: `/recipients/cache${q}`, headers: READ })).json().entries as {
        address: string;
        verdict: string;
        ttlSeconds: number;
      }[];
    expect((await list('?domain=example.com')).map((e) => [e.address, e.verdict])).toEqual([
      ['alice@example.com', 'known'],
      ['zed@example.com', 'unknown'],
    ]);
    expect((await list('?address=zed@example.com'))[0]?.ttlSeconds).toBeGreaterThan(7000);
    expect(await list('')).toHaveLength(3);
    const denied = await app.inject({
      method: 'DELETE',
      url: '/recipients/cache?address=zed@example.com',
      headers: READ,
    });
    expect(denied.statusCode).toBe(403);
    const flushed = await app.inject({
      method: 'DELETE',
      url: '/recipients/cache?address=zed@example.com',
      headers: AUTH,
    });
    expect(flushed.json()).toEqual({ flushed: 1 });
    expect(
      (
        await app.inject({ method: 'DELETE', url: '/recipients/cache?domain=example.org', headers: AUTH })
      ).json(),
    ).toEqual({
      flushed: 1,
    });
    expect((await list('')).map((e) => e.address)).toEqual(['alice@example.com']);
  });
});

describe('partitions', () => {
  test('GET /partitions: each partition, its slot and what it holds; routes and the queue act across them', async () => {
    const { app, spool } = await fx.app({}, 4);
    const metas = [];
    for (let i = 0; i < 12; i++)
      metas.push(await queueMail(spool, 'a@example.org', { [INBOUND]: [`u${i}@example.com`] }));
    const r = await app.inject({ url: '/partitions', headers: READ });
    expect(r.statusCode).toBe(200);
    const body = r.json() as {
      placement: number;
      partitions: { partition: number; tag: string; slot: number; messages: number; placing: boolean }[];
    };
    expect(body.placement).toBe(4);
    expect(body.partitions.map((p) => p.partition)).toEqual([0, 1, 2, 3, 4]);
    expect(body.partitions.reduce((n, p) => n + p.messages, 0)).toBe(12);
    expect(body.partitions[0]).toMatchObject({ messages: 0, placing: false, tag: spool.keys.root });
    expect(
      body.partitions
        .slice(1)
        .every((p) => p.placing && p.tag.startsWith(`${spool.keys.root.slice(0, -1)}:p`)),
    ).toBe(true);
    expect(new Set(body.partitions.map((p) => p.slot)).size).toBe(5);

    const routes = (await app.inject({ url: '/routes', headers: READ })).json().routes as {
      routeId: string;
      counts: { waiting: number };
    }[];
    expect(routes.find((x) => x.routeId === INBOUND)?.counts.waiting).toBe(12);
    const listed = await app.inject({
      url: `/queue?route=${encodeURIComponent(INBOUND)}&state=waiting&limit=100`,
      headers: READ,
    });
    expect(listed.json().total).toBe(12);
    const paused = await app.inject({
      method: 'POST',
      url: `/routes/${encodeURIComponent(INBOUND)}/pause`,
      headers: AUTH,
    });
    expect(paused.json().paused).toBe(true);
    expect(await Promise.all(spool.partitions().map((p) => spool.queue(INBOUND, p).isPaused()))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(metas).toHaveLength(12);
  });
});
