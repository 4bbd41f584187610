import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { hashPassword } from './passwords.js';
import { Client } from './test-client.js';
import { MESSAGE, queueIdOf, startRedis, startTestEdge, type TestEdge } from './test-fixture.js';

let redis: RedisServer;
let t: TestEdge;

beforeAll(async () => {
  redis = await startRedis();
  const password = await hashPassword('s3cret-passw0rd', { N: 1024, r: 8, p: 1 });
  t = await startTestEdge(redis, {
    smtp: { listen: ['127.0.0.1:2525'], users: [{ name: 'exchange', password }] },
  });
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

describe('outbound: SMTP AUTH, only after STARTTLS', () => {
  test('AUTH is not offered before STARTTLS and refused if tried', async () => {
    const c = await RawSmtp.connect({ port: t.port });
    const ehlo = await c.cmd('EHLO exchange.corp.example.com');
    expect(ehlo).toContain('STARTTLS');
    expect(ehlo).not.toMatch(/AUTH/);
    expect(await c.cmd('AUTH PLAIN AGV4Y2hhbmdlAHMzY3JldC1wYXNzdzByZA==')).toMatch(/^5\d\d /);
    await c.cmd('MAIL FROM:<ceo@example.com>');
    expect(await c.cmd('RCPT TO:<partner@example.net>')).toBe('550 5.7.1 Relaying denied');
    c.destroy();
  });

  test('after STARTTLS and AUTH, mail to any domain is accepted and recorded with TLS and the user', async () => {
    const client = new Client(t.port, { requireTLS: true });
    await client.connect();
    expect(client.secure).toBe(true);
    await client.login('exchange', 's3cret-passw0rd');
    const result = await client.send(
      'ceo@example.com',
      ['partner@example.net', 'someone@example.org'],
      MESSAGE,
    );
    expect(result.accepted).toEqual(['partner@example.net', 'someone@example.org']);
    const id = queueIdOf(result.response);
    const body = (await t.spool.readBody(id))?.toString('latin1') ?? '';
    expect(body).toMatch(
      /^Received: from exchange\.corp\.example\.com \(unknown \[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.[23] with cipher \S+\)\r\n\t\(Authenticated sender: exchange\)\r\n\tby relay\.example\.com \(Moat\) with ESMTPSA id /,
    );
    // A submission without Message-ID and Date gets both.
    expect(body).toContain(`Message-ID: <${id}@relay.example.com>\r\n`);
    expect(body).toMatch(/\r\nDate: \w{3}, \d+ \w{3} \d{4} /);
    const meta = await t.spool.readMeta(id);
    expect(meta?.routes.map((r) => [r.routeId, r.recipients])).toEqual([
      ['mx', ['partner@example.net']],
      ['[192.168.1.254]:2525', ['someone@example.org']],
    ]);
    expect(meta?.client).toMatchObject({ user: 'exchange', tls: true });
    client.close();
  });

  test('a wrong password is refused with 535 5.7.8 and grants nothing', async () => {
    const client = new Client(t.port, { requireTLS: true });
    await client.connect();
    await expect(client.login('exchange', 'wrong')).rejects.toThrow(/535 5\.7\.8/);
    await expect(client.login('nobody', 's3cret-passw0rd')).rejects.toThrow(/535 5\.7\.8/);
    await expect(client.send('a@example.com', ['x@example.net'], MESSAGE)).rejects.toThrow(
      /550 5\.7\.1 Relaying denied/,
    );
    client.close();
  });
});

describe('outbound: allow-listed client networks', () => {
  test('a client inside outbound.clients may relay anywhere, without AUTH', async () => {
    const inside = await startTestEdge(redis, { outbound: { clients: ['127.0.0.0/8'] } });
    try {
      const c = await RawSmtp.connect({ port: inside.port });
      await c.cmd('EHLO exchange.corp.example.com');
      await c.cmd('MAIL FROM:<ceo@example.com>');
      expect(await c.cmd('RCPT TO:<partner@example.net>')).toMatch(/^250 /);
      // Even trusted clients never get address literals.
      expect(await c.cmd('RCPT TO:<x@[192.0.2.1]>')).toBe('550 5.7.1 Relaying denied');
      const id = queueIdOf(await c.data(MESSAGE));
      expect((await inside.spool.readMeta(id))?.routes[0]?.routeId).toBe('mx');
      c.destroy();
    } finally {
      await inside.close();
    }
  });
});
