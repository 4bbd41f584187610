import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { tokenChecker } from './auth.js';
import {
  ADMIN_TOKEN,
  AUTH,
  type Fixture,
  INBOUND,
  queueMail,
  READ,
  READ_TOKEN,
  startFixture,
  testConfig,
} from './test-app.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture();
});
afterAll(() => fx.close());

describe('tokens', () => {
  const check = tokenChecker([
    { name: 'ops', token: ADMIN_TOKEN, scope: 'admin' },
    { name: '', token: READ_TOKEN, scope: 'read' },
  ]);
  test.each([
    ['no header', undefined, 'read', 401],
    ['not bearer', `Basic ${ADMIN_TOKEN}`, 'read', 401],
    ['empty bearer', 'Bearer ', 'read', 401],
    ['wrong token', 'Bearer admin-token-0123456789abcdeX', 'read', 401],
    ['a prefix of a token', `Bearer ${ADMIN_TOKEN.slice(0, -1)}`, 'read', 401],
    ['a token with more after it', `Bearer ${ADMIN_TOKEN}x`, 'read', 401],
    ['read token for an admin route', `Bearer ${READ_TOKEN}`, 'admin', 403],
    ['read token for a read route', `Bearer ${READ_TOKEN}`, 'read', 200],
    ['admin token for an admin route', `bearer ${ADMIN_TOKEN}`, 'admin', 200],
  ] as const)('%s → %i', (_name, header, scope, status) => {
    const r = check(header, scope);
    expect(r.ok ? 200 : r.status).toBe(status);
  });

  test('an unnamed token gets a name by position', () => {
    const r = check(`Bearer ${READ_TOKEN}`, 'admin');
    expect(r.ok ? '' : r.message).toContain('token-2');
  });
});

describe('every route but the probes needs a token', () => {
  const protectedRoutes = [
    ['GET', '/queue'],
    ['GET', '/queue/ABCDEF'],
    ['POST', '/queue/ABCDEF/retry'],
    ['POST', '/queue/ABCDEF/hold'],
    ['POST', '/queue/ABCDEF/release'],
    ['DELETE', '/queue/ABCDEF'],
    ['POST', '/queue/bulk'],
    ['GET', '/routes'],
    ['POST', '/routes/mx/pause'],
    ['POST', '/routes/mx/resume'],
    ['GET', '/nodes'],
    ['GET', '/partitions'],
    ['GET', '/tracking'],
    ['POST', '/selftest/relay'],
    ['GET', '/openapi.json'],
    ['GET', '/no/such/route'],
  ] as const;

  test.each(protectedRoutes)('%s %s without a token is 401, with a bad one 401', async (method, url) => {
    const { app } = await fx.app();
    const none = await app.inject({ method, url });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer realm="moat"');
    expect(none.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    const bad = await app.inject({
      method,
      url,
      headers: { authorization: 'Bearer not-a-valid-token-at-all' },
    });
    expect(bad.statusCode).toBe(401);
  });

  test.each(protectedRoutes.filter(([m]) => m !== 'GET'))(
    '%s %s with a read token is 403',
    async (method, url) => {
      const { app } = await fx.app();
      const r = await app.inject({ method, url, headers: READ, payload: {} });
      expect(r.statusCode).toBe(403);
      expect(r.json().message).toBe('token "grafana" has scope read; this route needs scope admin');
    },
  );

  test('a read token may read', async () => {
    const { app } = await fx.app();
    for (const url of ['/queue', '/routes', '/nodes', '/tracking', '/openapi.json']) {
      expect((await app.inject({ url, headers: READ })).statusCode, url).toBe(200);
    }
  });

  test('health, ready, metrics and the dashboard page need none', async () => {
    const { app } = await fx.app();
    for (const url of [
      '/health',
      '/ready',
      '/metrics',
      '/dashboard',
      '/dashboard/app.js',
      '/dashboard/app.css',
    ]) {
      expect((await app.inject({ url })).statusCode, url).toBe(200);
    }
  });

  test('with no tokens configured, only the public routes open', async () => {
    const { app } = await fx.app({ config: testConfig({ admin: { listen: '127.0.0.1:8025', tokens: [] } }) });
    expect((await app.inject({ url: '/routes', headers: AUTH })).statusCode).toBe(401);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
  });
});

test('request logs carry method, url and status but never the token or a body', async () => {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  const log = pino({ level: 'trace' }, stream);
  const { app, spool } = await fx.app({ log });
  const m = await queueMail(spool, 'alice@example.org', { [INBOUND]: ['bob@example.com'] }, 'Secret plans');
  await app.inject({ url: `/queue/${m.id}`, headers: AUTH });
  await app.inject({
    method: 'POST',
    url: '/queue/bulk',
    headers: AUTH,
    payload: { action: 'hold', filter: { sender: 'zed@example.org' } },
  });
  await app.inject({ url: '/routes', headers: { authorization: 'Bearer wrong-token-that-is-long' } });
  const text = lines.join('');
  expect(text).toContain(`/queue/${m.id}`);
  expect(text).toContain('"statusCode":401');
  expect(text).not.toContain(ADMIN_TOKEN);
  expect(text).not.toContain('wrong-token-that-is-long');
  expect(text).not.toContain('Secret plans');
  expect(text).not.toContain('zed@example.org');
  expect(text.toLowerCase()).not.toContain('authorization');
});
