import { Counters, connect, Heartbeat, Spool } from '@moat/spool';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildAdminApp } from './app.js';
import { AUTH, deferJobs, type Fixture, INBOUND, queueMail, startFixture, testConfig } from './test-app.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture();
});
afterAll(() => fx.close());

describe('health and readiness', () => {
  test('GET /health answers with the node, its version and the Node.js running it', async () => {
    const { app } = await fx.app();
    const r = await app.inject({ url: '/health' });
    expect(r.json()).toEqual({
      status: 'ok',
      node: 'test:1',
      version: '9.9.9',
      nodeVersion: process.version,
      uptimeSeconds: expect.any(Number),
    });
  });

  test('GET /ready carries warnings without being unready', async () => {
    const warned = await fx.app({ warnings: () => ['redis: 0 of 1 replicas online'] });
    const r = await warned.app.inject({ url: '/ready' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({
      status: 'ready',
      checks: { redis: true },
      warnings: ['redis: 0 of 1 replicas online'],
    });
    const plain = await fx.app();
    expect((await plain.app.inject({ url: '/ready' })).json()).not.toHaveProperty('warnings');
  });

  test("GET /ready is 503 when a role's check fails or Redis is gone", async () => {
    let edgeUp = false;
    const { app } = await fx.app({ ready: () => ({ edge: edgeUp }) });
    const down = await app.inject({ url: '/ready' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ status: 'unready', checks: { redis: true, edge: false } });
    edgeUp = true;
    expect((await app.inject({ url: '/ready' })).json()).toEqual({
      status: 'ready',
      checks: { redis: true, edge: true },
    });
  });
});

describe('Redis unreachable', () => {
  test('routes answer 503 "Redis is not reachable", /ready says unready, /health stays up', async () => {
    const dead = connect({ url: 'redis://127.0.0.1:1', commandTimeout: 500 }, 'producer');
    const spool = new Spool({ redis: dead, prefix: 'dead', timeout: 500, ack: 'local', replicas: 1 });
    const app = await buildAdminApp({ config: testConfig(), spool, nodeId: 'test:2', version: '9.9.9' });
    try {
      const routes = await app.inject({ url: '/routes', headers: AUTH });
      expect(routes.statusCode).toBe(503);
      expect(routes.json()).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'Redis is not reachable',
      });
      const ready = await app.inject({ url: '/ready' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json().checks.redis).toBe(false);
      expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    } finally {
      await app.close();
      await spool.close();
      dead.disconnect();
    }
  });
});

describe('GET /openapi.json', () => {
  test('documents every route with its parameters, bodies, responses and bearer auth', async () => {
    const { app } = await fx.app();
    const doc = (await app.inject({ url: '/openapi.json', headers: AUTH })).json();
    expect(doc.openapi).toBe('3.0.3');
    expect(doc.components.securitySchemes.bearer).toEqual({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/health',
      '/metrics',
      '/nodes',
      '/partitions',
      '/queue',
      '/queue/bulk',
      '/queue/{id}',
      '/queue/{id}/hold',
      '/queue/{id}/release',
      '/queue/{id}/retry',
      '/ready',
      '/recipients/cache',
      '/routes',
      '/routes/{id}/pause',
      '/routes/{id}/resume',
      '/selftest/relay',
      '/tracking',
    ]);
    expect(Object.keys(doc.paths['/queue/{id}'])).toEqual(['get', 'delete']);
    expect(Object.keys(doc.paths['/recipients/cache'])).toEqual(['get', 'delete']);
    expect(doc.paths['/health'].get.security).toEqual([]);
    const list = doc.paths['/queue'].get;
    expect(list.parameters.map((p: { name: string }) => p.name)).toEqual([
      'route',
      'state',
      'offset',
      'limit',
      'order',
    ]);
    expect(
      Object.keys(list.responses['200'].content['application/json'].schema.properties.jobs.items.properties),
    ).toContain('lastReply');
  });
});

describe('GET /metrics', () => {
  test('queue figures, counters from every node, node and process figures', async () => {
    const { app, spool } = await fx.app();
    await queueMail(spool, 'a@example.org', { [INBOUND]: ['x@example.com'] });
    await queueMail(spool, 'b@example.org', { [INBOUND]: ['y@example.com'], mx: ['z@example.org'] });
    await deferJobs(spool, fx.workerRedis, 'mx', 1);
    const edge = new Counters(fx.redis, spool.keys);
    edge.inc('accepted', {}, 2);
    edge.inc('rejected', { reason: 'relay-denied' });
    const worker = new Counters(fx.redis, spool.keys);
    worker.inc('deliveries', { route: 'mx', result: 'deferred' });
    worker.observe('deliveryLatency', { route: 'mx' }, 2);
    await Promise.all([edge.stop(), worker.stop()]);
    const beat = new Heartbeat(fx.redis, spool.keys, () => ({
      id: 'edge1:7',
      hostname: 'edge1',
      pid: 7,
      roles: ['edge'],
      version: '0.1.0',
      nodeVersion: 'v24.22.3',
      startedAt: Date.now(),
      stats: { sessions: 4, load1: 0.5 },
    }));
    await beat.beat();

    const r = await app.inject({ url: '/metrics' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('text/plain');
    const text = r.body;
    const lines = text.split('\n');
    const route = INBOUND.replace(/"/g, '\\"');
    for (const line of [
      `moat_queue_jobs{route="${route}",state="waiting"} 2`,
      'moat_queue_jobs{route="mx",state="deferred"} 1',
      'moat_queue_jobs{route="mx",state="held"} 0',
      'moat_route_paused{route="mx"} 0',
      'moat_messages_accepted_total 2',
      'moat_messages_received_total 0',
      'moat_messages_rejected_total{reason="relay-denied"} 1',
      'moat_deliveries_total{route="mx",result="deferred"} 1',
      'moat_delivery_latency_seconds_bucket{route="mx",le="1"} 0',
      'moat_delivery_latency_seconds_bucket{route="mx",le="5"} 1',
      'moat_delivery_latency_seconds_bucket{route="mx",le="+Inf"} 1',
      'moat_delivery_latency_seconds_sum{route="mx"} 2',
      'moat_delivery_latency_seconds_count{route="mx"} 1',
      'moat_node_up{node="edge1:7",roles="edge",version="0.1.0",node_version="v24.22.3"} 1',
      'moat_smtp_sessions_active{node="edge1:7"} 4',
      'moat_node_load1{node="edge1:7"} 0.5',
      '# TYPE moat_delivery_latency_seconds histogram',
    ]) {
      expect(lines, line).toContain(line);
    }
    expect(text).toMatch(/^moat_queue_oldest_message_age_seconds\{route="mx"\} \d/m);
    expect(text).toMatch(/^moat_redis_memory_used_bytes \d+$/m);
    expect(text).toMatch(/^process_resident_memory_bytes\{node="test:1"\} \d+$/m);
    // Buckets in order, each series once.
    const buckets = lines.filter((l) => l.startsWith('moat_delivery_latency_seconds_bucket'));
    expect(buckets.map((l) => /le="([^"]+)"/.exec(l)?.[1])).toEqual([
      '1',
      '5',
      '15',
      '60',
      '300',
      '900',
      '3600',
      '14400',
      '86400',
      '432000',
      '+Inf',
    ]);
    const series = lines.filter((l) => l && !l.startsWith('#')).map((l) => l.replace(/ [^ ]+$/, ''));
    expect(new Set(series).size).toBe(series.length);
    await beat.stop();
  });
});
