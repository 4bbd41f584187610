import { compileRelayPolicy, configSchema, openRelayProbes } from '@moat/policy';
import { RawSmtp, type RedisServer } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { BASE_CONFIG, MESSAGE, queueIdOf, startRedis, startTestEdge, type TestEdge } from './test-fixture.js';

let redis: RedisServer;
let t: TestEdge;

beforeAll(async () => {
  redis = await startRedis();
  t = await startTestEdge(redis);
});
afterAll(async () => {
  await t.close();
  await redis.stop();
});

async function session(): Promise<RawSmtp> {
  const c = await RawSmtp.connect({ port: t.port });
  expect(await c.cmd('EHLO mx.example.net')).toMatch(/^250-relay\.example\.com/);
  return c;
}

describe('greeting and EHLO', () => {
  test('advertises the ESMTP extensions and the size limit', async () => {
    const c = await RawSmtp.connect({ port: t.port, greeting: false });
    expect(await c.reply()).toBe('220 relay.example.com ESMTP Moat');
    const ehlo = await c.cmd('EHLO mx.example.net');
    for (const ext of [
      'PIPELINING',
      '8BITMIME',
      'SMTPUTF8',
      'ENHANCEDSTATUSCODES',
      'STARTTLS',
      `SIZE ${35 * 1024 * 1024}`,
    ]) {
      expect(ehlo).toContain(ext);
    }
    expect(ehlo).not.toContain('AUTH');
    c.destroy();
  });
});

describe('inbound: mail for our domains from anyone', () => {
  test('is queued, and a 250 means body and job are in Redis', async () => {
    const c = await session();
    expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<c@EXAMPLE.org>')).toMatch(/^250 /);
    const reply = await c.data(MESSAGE);
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as [0-9A-Z]{20}$/);
    const id = queueIdOf(reply);
    // Trust the data, not the reply: read it back through the spool API.
    const body = (await t.spool.readBody(id))?.toString('latin1') ?? '';
    expect(body).toMatch(
      /^Received: from mx\.example\.net \(unknown \[127\.0\.0\.1\]\)\r\n\tby relay\.example\.com \(Moat\) with ESMTP id /,
    );
    expect(body.endsWith(MESSAGE)).toBe(true);
    const job1 = await t.spool.queue('[192.168.1.254]').getJob(`${id}-1`);
    const job2 = await t.spool.queue('[192.168.1.254]:2525').getJob(`${id}-2`);
    expect(job1?.data).toMatchObject({ sender: 'a@example.net', recipients: ['b@example.com'] });
    expect(job2?.data).toMatchObject({ recipients: ['c@example.org'] });
    c.destroy();
  });

  test('RCPT TO:<Postmaster> without a domain is accepted (RFC 5321 §4.1.1.3) for our first domain', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<a@example.net>');
    expect(await c.cmd('RCPT TO:<Postmaster>')).toMatch(/^250 /);
    const id = queueIdOf(await c.data(MESSAGE));
    expect((await t.spool.readMeta(id))?.routes[0]?.recipients).toEqual(['postmaster@example.com']);
    c.destroy();
  });

  test('the null sender (bounces) is accepted', async () => {
    const c = await session();
    expect(await c.cmd('MAIL FROM:<>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250 /);
    const id = queueIdOf(await c.data(MESSAGE));
    expect((await t.spool.queue('[192.168.1.254]').getJob(`${id}-1`))?.data.sender).toBe('');
    c.destroy();
  });

  test('several messages over one connection, pipelined', async () => {
    const c = await session();
    c.write('MAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n');
    expect(await c.reply()).toMatch(/^250 /);
    expect(await c.reply()).toMatch(/^250 /);
    expect(await c.reply()).toMatch(/^354 /);
    c.write(`${MESSAGE}.\r\n`);
    const first = await c.reply();
    expect(first).toMatch(/^250 2\.0\.0/);
    expect(await c.cmd('MAIL FROM:<a@example.net>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<b@example.com>')).toMatch(/^250 /);
    const second = await c.data(MESSAGE);
    expect(queueIdOf(second)).not.toBe(queueIdOf(first));
    c.destroy();
  });
});

describe('never an open relay', () => {
  test('a foreign recipient from an untrusted client: 550 5.7.1 Relaying denied', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<spammer@example.net>');
    expect(await c.cmd('RCPT TO:<victim@gmail.com>')).toBe('550 5.7.1 Relaying denied');
    c.destroy();
  });

  const config = configSchema.parse({ ...BASE_CONFIG });
  const probes = openRelayProbes(compileRelayPolicy(config)).filter((p) => p.expect === 'reject');
  test.each(probes.map((p) => [p.name, p.recipient]))(
    'trick %s (%s) is refused with 5xx at RCPT',
    async (_name, recipient) => {
      const c = await session();
      await c.cmd('MAIL FROM:<a@example.net>');
      const reply = await c.cmd(`RCPT TO:<${recipient}>`);
      expect(reply).toMatch(/^5\d\d /);
      expect(await c.cmd('DATA')).toMatch(/^503 /);
      c.destroy();
    },
  );

  test('a mixed transaction from an untrusted client queues only the local recipient', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<a@example.net>');
    expect(await c.cmd('RCPT TO:<local@example.com>')).toMatch(/^250 /);
    expect(await c.cmd('RCPT TO:<remote@example.net>')).toBe('550 5.7.1 Relaying denied');
    const id = queueIdOf(await c.data(MESSAGE));
    const meta = await t.spool.readMeta(id);
    expect(meta?.routes).toEqual([
      { routeId: '[192.168.1.254]', jobId: `${id}-1`, recipients: ['local@example.com'] },
    ]);
    c.destroy();
  });

  test('a bad sender address is refused with 553 5.1.7', async () => {
    const c = await session();
    expect(await c.cmd('MAIL FROM:<user@localhost>')).toMatch(/^553 5\.1\.7 /);
    c.destroy();
  });
});

describe('headers', () => {
  test('too many Received: headers is a loop: 554 5.4.6, nothing queued', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@example.com>');
    const hops = Array.from(
      { length: 31 },
      (_, i) => `Received: from hop${i}.example.net by x; Sat, 28 Nov 2026 10:00:00 +0000\r\n`,
    ).join('');
    expect(await c.data(`${hops}${MESSAGE}`)).toMatch(/^554 5\.4\.6 /);
    c.destroy();
  });

  test('bare LF and bare CR become CRLF before the message is stored (SMTP smuggling)', async () => {
    const c = await session();
    await c.cmd('MAIL FROM:<a@example.net>');
    await c.cmd('RCPT TO:<b@example.com>');
    await c.cmd('DATA');
    // A smuggling attempt: "\n.\n" and "\r.\r" that a lenient next hop could read as end-of-data.
    c.write('Subject: x\r\n\r\nline1\n.\nMAIL FROM:<evil@example.net>\r\nline2\r.\rend\r\n.\r\n');
    const id = queueIdOf(await c.reply());
    const body = (await t.spool.readBody(id))?.toString('latin1') ?? '';
    expect(body).toContain('line1\r\n.\r\nMAIL FROM:<evil@example.net>\r\nline2\r\n.\r\nend\r\n');
    expect(/\r(?!\n)|(?<!\r)\n/.test(body)).toBe(false);
    // So the job says so, and the delivery does not search the body for bare endings again.
    const job = await t.spool.queue('[192.168.1.254]').getJob(`${id}-1`);
    expect(job?.data.crlf).toBe(true);
    c.destroy();
  });
});
