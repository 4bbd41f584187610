import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AUTH, deferJobs, type Fixture, INBOUND, queueMail, startFixture } from './test-app.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture();
});
afterAll(() => fx.close());

describe('GET /queue', () => {
  test('lists jobs by state with paging; deferred ones carry the last remote reply', async () => {
    const { app, spool } = await fx.app();
    const a = await queueMail(spool, 'a@example.org', { [INBOUND]: ['x@example.com'] });
    const b = await queueMail(spool, 'b@example.org', {
      [INBOUND]: ['y@example.com'],
      mx: ['z@example.org'],
    });
    await queueMail(spool, 'c@example.org', { [INBOUND]: ['w@example.com'] });

    const page1 = await app.inject({
      url: `/queue?state=waiting&route=${encodeURIComponent(INBOUND)}&limit=2`,
      headers: AUTH,
    });
    expect(page1.statusCode).toBe(200);
    expect(page1.json()).toMatchObject({ total: 3, offset: 0, limit: 2 });
    expect(page1.json().jobs.map((j: { messageId: string }) => j.messageId)).toEqual([a.id, b.id]);
    const page2 = await app.inject({
      url: `/queue?state=waiting&route=${encodeURIComponent(INBOUND)}&limit=2&offset=2`,
      headers: AUTH,
    });
    expect(page2.json().jobs).toHaveLength(1);

    const all = await app.inject({ url: '/queue?state=waiting', headers: AUTH });
    expect(all.json().total).toBe(4);

    await deferJobs(spool, fx.workerRedis, 'mx', 1);
    const deferred = await app.inject({ url: '/queue', headers: AUTH });
    expect(deferred.json().total).toBe(1);
    const [job] = deferred.json().jobs;
    expect(job).toEqual({
      routeId: 'mx',
      jobId: `${b.id}-2`,
      messageId: b.id,
      state: 'deferred',
      kind: 'message',
      sender: 'b@example.org',
      recipients: ['z@example.org'],
      queuedAt: b.receivedAt,
      attempts: 1,
      nextAttemptAt: expect.any(Number),
      lastReply: { code: 451, text: '4.7.1 Greylisted, try again later', host: '192.168.1.254' },
      heldAt: null,
      heldBy: null,
      failedReason: null,
    });
    const oldest = await app.inject({ url: '/queue?state=deferred&order=oldest&limit=5', headers: AUTH });
    expect(oldest.json().jobs.map((j: { jobId: string }) => j.jobId)).toEqual([`${b.id}-2`]);
  });

  test.each([
    ['/queue?state=stuck', 'querystring/state must be equal to one of the allowed values'],
    ['/queue?limit=0', 'querystring/limit must be >= 1'],
    ['/queue?limit=100000', 'querystring/limit must be <= 500'],
    ['/queue?limit=ten', 'querystring/limit must be integer'],
    ['/queue?colour=blue', 'querystring must NOT have additional properties'],
    [
      '/queue?state=waiting&offset=9990&limit=20',
      'without a route, paging stops at 10000 jobs: name a route to page further',
    ],
    ['/queue/not%20an%20id', 'params/id must match pattern "^[0-9A-Za-z-]{1,64}$"'],
  ])('bad input %s → 400 with a clear message', async (url, message) => {
    const { app } = await fx.app();
    const r = await app.inject({ url, headers: AUTH });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ statusCode: 400, error: 'Bad Request', message });
    expect(r.body).not.toMatch(/ at .*\.(js|ts):\d+/);
  });
});

describe('one message', () => {
  test('GET /queue/:id shows envelope, client, headers, jobs and events', async () => {
    const { app, spool } = await fx.app();
    const m = await queueMail(
      spool,
      'a@example.org',
      { [INBOUND]: ['x@example.com'], mx: ['y@example.org'] },
      'Quarterly',
    );
    await deferJobs(spool, fx.workerRedis, 'mx', 1);
    const r = await app.inject({ url: `/queue/${m.id}`, headers: AUTH });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({
      id: m.id,
      sender: 'a@example.org',
      size: m.size,
      kind: 'message',
      client: { ip: '192.0.2.10', helo: 'mx.example.org', user: null, tls: false },
      recipients: ['x@example.com', 'y@example.org'],
    });
    expect(body.headers).toEqual([
      { name: 'Received', value: 'from mx.example.org (mx.example.org [192.0.2.10]) by relay.example.com' },
      { name: 'Subject', value: 'Quarterly' },
      { name: 'From', value: '<a@example.org>' },
    ]);
    expect(body.jobs.map((j: { routeId: string; state: string }) => [j.routeId, j.state])).toEqual([
      [INBOUND, 'waiting'],
      ['mx', 'deferred'],
    ]);
    expect(body.jobs[1].lastReply.code).toBe(451);
    expect(body.events.map((e: { type: string }) => e.type)).toEqual(['deferred', 'received']);
    expect(body.events[0].reply).toBe('451 4.7.1 Greylisted, try again later');

    const missing = await app.inject({ url: '/queue/00000000000000000000', headers: AUTH });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().message).toBe('no queued message 00000000000000000000');
  });

  test('retry now, hold, release and delete', async () => {
    const { app, spool } = await fx.app();
    const m = await queueMail(spool, 'a@example.org', {
      [INBOUND]: ['x@example.com'],
      mx: ['y@example.org'],
    });
    await deferJobs(spool, fx.workerRedis, 'mx', 1);
    const post = (action: string, payload: object = {}) =>
      app.inject({ method: 'POST', url: `/queue/${m.id}/${action}`, headers: AUTH, payload });

    const retry = await post('retry', { route: 'mx' });
    expect(retry.statusCode).toBe(200);
    expect(retry.json().results).toEqual([
      {
        routeId: 'mx',
        jobId: `${m.id}-2`,
        messageId: m.id,
        action: 'retry',
        outcome: 'done',
        state: 'waiting',
      },
    ]);

    const hold = await post('hold');
    expect(hold.json().results.map((r: { state: string }) => r.state)).toEqual(['held', 'held']);
    const held = await app.inject({ url: '/queue?state=held', headers: AUTH });
    expect(held.json().jobs.map((j: { heldBy: string }) => j.heldBy)).toEqual(['ops', 'ops']);
    expect((await app.inject({ url: '/queue?state=waiting', headers: AUTH })).json().total).toBe(0);

    const retryHeld = await post('retry');
    expect(retryHeld.statusCode).toBe(409);
    expect(retryHeld.json().message).toContain('is held: release it instead');

    const release = await post('release', { route: INBOUND });
    expect(release.json().results).toEqual([expect.objectContaining({ routeId: INBOUND, state: 'waiting' })]);

    const noDsn = await app.inject({ method: 'DELETE', url: `/queue/${m.id}?dsn=true`, headers: AUTH });
    expect(noDsn.statusCode).toBe(400);
    expect(noDsn.json().message).toBe('deleting with a DSN is not available: no bounce sender is configured');

    const del = await app.inject({ method: 'DELETE', url: `/queue/${m.id}`, headers: AUTH });
    expect(del.statusCode).toBe(200);
    expect(del.json().results.map((r: { state: string }) => r.state)).toEqual(['done', 'done']);
    expect(await spool.readBody(m.id)).toBeNull();
    expect((await app.inject({ url: `/queue/${m.id}`, headers: AUTH })).statusCode).toBe(404);
    expect((await post('retry')).statusCode).toBe(404);
  });

  test('delete with a DSN calls the bounce hook while the body is still there', async () => {
    const bounced: string[] = [];
    const { app, spool } = await fx.app({
      bounce: async (job, reason) => {
        bounced.push(`${job.recipients.join()}|${reason}|${(await spool.readBody(job.messageId)) !== null}`);
      },
    });
    const m = await queueMail(spool, 'a@example.org', { [INBOUND]: ['x@example.com'] });
    const r = await app.inject({ method: 'DELETE', url: `/queue/${m.id}?dsn=true`, headers: AUTH });
    expect(r.json().results[0].dsn).toBe('sent');
    expect(bounced).toEqual(['x@example.com|deleted by an operator|true']);
  });

  test.each([
    ['POST', '/queue/ABC/hold', { route: { x: 1 } }, 'body/route must be string'],
    ['POST', '/queue/ABC/hold', { colour: 'blue' }, 'body must NOT have additional properties'],
    ['DELETE', '/queue/ABC?dsn=maybe', undefined, 'querystring/dsn must be boolean'],
  ])('bad input %s %s → 400', async (method, url, payload, message) => {
    const { app } = await fx.app();
    const r = await app.inject({
      method: method as 'POST',
      url,
      headers: AUTH,
      ...(payload ? { payload } : {}),
    });
    expect(r.json()).toEqual({ statusCode: 400, error: 'Bad Request', message });
  });

  test('an action needs no body at all', async () => {
    const { app, spool } = await fx.app();
    const m = await queueMail(spool, 'a@example.org', { [INBOUND]: ['x@example.com'] });
    const r = await app.inject({ method: 'POST', url: `/queue/${m.id}/hold`, headers: AUTH });
    expect(r.statusCode).toBe(200);
    expect(r.json().results[0].state).toBe('held');
  });

  test('a body that is not JSON is a 400, not a 500', async () => {
    const { app } = await fx.app();
    const r = await app.inject({
      method: 'POST',
      url: '/queue/ABC/hold',
      headers: { ...AUTH, 'content-type': 'application/json' },
      payload: '{not json',
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toBe('Bad Request');
    expect(r.body).not.toContain('at ');
  });
});

describe('POST /queue/bulk', () => {
  test('hold by recipient domain, then delete the held older than 0s; dry run first', async () => {
    const { app, spool } = await fx.app();
    const a = await queueMail(spool, 'a@example.org', {
      [INBOUND]: ['x@example.com'],
      mx: ['y@victim.example'],
    });
    const b = await queueMail(spool, 'b@example.org', { mx: ['z@victim.example'] });
    await queueMail(spool, 'c@example.org', { [INBOUND]: ['w@example.com'] });
    const bulk = (payload: object) =>
      app.inject({ method: 'POST', url: '/queue/bulk', headers: AUTH, payload });

    const dry = await bulk({ action: 'hold', filter: { recipientDomain: 'victim.example' }, dryRun: true });
    expect(dry.json()).toMatchObject({ matched: 2, dryRun: true, errors: [] });
    expect((await app.inject({ url: '/queue?state=held', headers: AUTH })).json().total).toBe(0);

    const hold = await bulk({ action: 'hold', filter: { recipientDomain: 'victim.example' } });
    expect(hold.json()).toMatchObject({ matched: 2, dryRun: false, errors: [] });
    expect((await app.inject({ url: '/queue?state=held', headers: AUTH })).json().total).toBe(2);

    const del = await bulk({ action: 'delete', filter: { states: ['held'], olderThan: '0s' } });
    expect(del.json().matched).toBe(2);
    expect(await spool.readBody(b.id)).toBeNull();
    expect(await spool.readBody(a.id)).not.toBeNull();

    const bySender = await bulk({ action: 'retry', filter: { sender: 'c@example.org', route: INBOUND } });
    expect(bySender.json().results).toEqual([
      expect.objectContaining({ outcome: 'unchanged', state: 'waiting' }),
    ]);
    const young = await bulk({ action: 'hold', filter: { olderThan: '1h' } });
    expect(young.json().matched).toBe(0);
  });

  test.each([
    [
      { action: 'hold', filter: {} },
      'body/filter is empty: name route, states, sender, recipientDomain or olderThan, or set all: true',
    ],
    [
      { action: 'explode', filter: { sender: 'a@b' } },
      'body/action must be equal to one of the allowed values',
    ],
    [{ filter: { sender: 'a@b' } }, "body must have required property 'action'"],
    [{ action: 'hold', filter: { olderThan: 'soon' } }, 'body/filter/olderThan'],
    [
      { action: 'hold', filter: { states: ['lost'] } },
      'body/filter/states/0 must be equal to one of the allowed values',
    ],
    [{ action: 'delete', dsn: true, filter: { sender: 'a@b' } }, 'deleting with a DSN is not available'],
  ])('bad bulk request %j → 400', async (payload, message) => {
    const { app } = await fx.app();
    const r = await app.inject({ method: 'POST', url: '/queue/bulk', headers: AUTH, payload });
    expect(r.statusCode).toBe(400);
    expect(r.json().message).toContain(message);
  });

  test('all: true allows an empty filter', async () => {
    const { app, spool } = await fx.app();
    await queueMail(spool, 'a@example.org', { [INBOUND]: ['x@example.com'] });
    const r = await app.inject({
      method: 'POST',
      url: '/queue/bulk',
      headers: AUTH,
      payload: { action: 'hold', filter: {}, all: true },
    });
    expect(r.json().matched).toBe(1);
  });
});
