import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH, deferJobs, type Fixture, INBOUND, queueMail, startFixture, testConfig } from './test-app.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture();
});
afterAll(() => fx.close());

describe('GET /tracking', () => {
  test('by message id, sender, recipient, domain, either address, and time', async () => {
    const { app, spool } = await fx.app();
    const before = Date.now();
    const a = await queueMail(spool, 'alice@example.org', { [INBOUND]: ['bob@example.com'] });
    const b = await queueMail(spool, 'bob@example.com', { mx: ['carol@example.org'] });
    await deferJobs(spool, fx.workerRedis, INBOUND, 1);
    const find = async (query: string) => {
      const r = await app.inject({ url: `/tracking?${query}`, headers: AUTH });
      expect(r.statusCode, query).toBe(200);
      return r.json().events.map((e: { type: string; messageId: string }) => `${e.type}:${e.messageId}`);
    };
    expect(await find(`messageId=${a.id}`)).toEqual([`deferred:${a.id}`, `received:${a.id}`]);
    expect(await find('sender=ALICE@example.org')).toEqual([`received:${a.id}`]);
    expect(await find('recipient=carol@example.org')).toEqual([`received:${b.id}`]);
    expect(await find('recipient=%40example.com')).toEqual([`deferred:${a.id}`, `received:${a.id}`]);
    expect(await find('address=bob@example.com')).toEqual([
      `deferred:${a.id}`,
      `received:${b.id}`,
      `received:${a.id}`,
    ]);
    expect(await find(`since=${Date.now() + 60_000}`)).toEqual([]);
    expect(await find(`since=${new Date(before - 1000).toISOString()}&limit=1`)).toHaveLength(1);

    const r = await app.inject({ url: `/tracking?messageId=${a.id}`, headers: AUTH });
    expect(r.json().events[0]).toEqual({
      type: 'deferred',
      messageId: a.id,
      time: expect.any(Number),
      routeId: INBOUND,
      recipients: ['bob@example.com'],
      host: '192.168.1.254',
      reply: '451 4.7.1 Greylisted, try again later',
    });
  });

  test.each([
    ['since=yesterday', 'querystring/since must be an ISO 8601 time or milliseconds, got "yesterday"'],
    ['limit=5000', 'querystring/limit must be <= 1000'],
    ['messageId=%3Cscript%3E', 'querystring/messageId must match pattern'],
  ])('bad input %s → 400', async (query, message) => {
    const { app } = await fx.app();
    const r = await app.inject({ url: `/tracking?${query}`, headers: AUTH });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toContain(message);
  });
});

describe('POST /selftest/relay', () => {
  test('reports every probe against the running config; a closed relay passes', async () => {
    const { app } = await fx.app();
    const r = await app.inject({ method: 'POST', url: '/selftest/relay', headers: AUTH });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.passed).toBe(true);
    expect(body.failed).toBe(0);
    expect(body.total).toBe(body.cases.length);
    expect(body.cases).toContainEqual({
      name: 'percent hack via example.com',
      clientIp: '192.0.2.1',
      recipient: 'user%relay-test.invalid@example.com',
      expect: 'reject',
      action: 'reject',
      reason: 'trick:percent-hack',
      reply: '550 5.7.1 Relaying denied',
      passed: true,
    });
    expect(body.cases).toContainEqual(
      expect.objectContaining({
        name: 'postmaster at example.com',
        expect: 'accept',
        action: 'accept',
        reply: null,
      }),
    );
  });

  test('an open config fails, naming the cases', async () => {
    // The probes' client is in outbound.clients: everything is accepted, so Moat is an open relay.
    const { app } = await fx.app({ config: testConfig({ outbound: { clients: ['0.0.0.0/0'] } }) });
    const body = (await app.inject({ method: 'POST', url: '/selftest/relay', headers: AUTH })).json();
    expect(body.passed).toBe(false);
    expect(body.failed).toBeGreaterThan(0);
    expect(body.cases).toContainEqual(
      expect.objectContaining({ name: 'plain foreign address', action: 'accept', passed: false }),
    );
  });
});
