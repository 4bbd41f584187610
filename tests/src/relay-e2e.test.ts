/**
 * The README's promise, end to end through one real `moat start` (edge, worker and admin in
 * one process): mail from anyone for our domain reaches the smart host byte for byte (after
 * the Received: header Moat adds); mail from an allowed network goes out by MX (testkit DNS
 * on loopback) to a host on 127.0.0.2; anyone else trying to relay is refused, whatever
 * address trick they use. The untrusted client is 127.0.0.3; only 127.0.0.1 may relay.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compileRelayPolicy, parseConfig } from '@moat/policy';
import {
  connect,
  keysFor,
  liveNodes,
  pauseRoute,
  resumeRoute,
  spoolFromConfig,
  whenReady,
} from '@moat/spool';
import {
  type DnsServer,
  dotStuff,
  freePort,
  RawSmtp,
  type RedisServer,
  type SmtpSink,
  startDns,
  startRedis,
  startSmtpSink,
  withoutFirstReceived,
} from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type MoatProcess, startMoat } from './moat-process.js';

const UNTRUSTED = '127.0.0.3';

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let smarthost: SmtpSink;
let mx: SmtpSink;
let moat: MoatProcess;
let smtpPort: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-relay-'));
  redis = await startRedis({ appendfsync: 'always' });
  smarthost = await startSmtpSink({ tls: false });
  mx = await startSmtpSink({ host: '127.0.0.2' }); // offers STARTTLS
  dns = await startDns({
    'remote.test': { MX: [{ preference: 10, exchange: 'mx.remote.test' }] },
    'mx.remote.test': { A: ['127.0.0.2'] },
  });
  smtpPort = await freePort();
  moat = await startMoat(
    'start',
    {
      hostname: 'relay.test',
      dataDir: dir,
      redis: { url: redis.url, prefix: 'relay' },
      smtp: { listen: [`127.0.0.1:${smtpPort}`] },
      inbound: { domains: { 'example.com': `[127.0.0.1]:${smarthost.port}` } },
      outbound: { clients: ['127.0.0.1/32'], smarthost: null },
      // Delivery from its own thread, whatever the machine (smuggling.test.ts covers one loop).
      delivery: { mxPort: mx.port, retry: ['1s'], thread: true },
      dns: { servers: [dns.server] },
      admin: { listen: null },
    },
    dir,
    'relay',
  );
  await moat.waitForEvent('moat.ready');
});
afterAll(async () => {
  await moat?.stop();
  await mx?.close();
  await smarthost?.close();
  await dns?.close();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('inbound from anyone: the smart host gets the message byte for byte after the Received: header', async () => {
  const message = Buffer.from(
    [
      'From: "Alice Example" <alice@elsewhere.test>',
      'To: bob@example.com',
      'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from the Internet',
      'Date: Sat, 28 Nov 2026 10:00:00 +0000',
      'Message-ID: <inbound-1@elsewhere.test>',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      'X-Folded: first part',
      '\tsecond part',
      '',
      'Grüße, 8-bit text — with a dash',
      '.a line that starts with a dot',
      '..two dots',
      '.',
      'trailing spaces   ',
      '\ttab-indented',
      '',
      '',
      'last line',
      '',
    ].join('\r\n'),
    'utf8',
  );
  const c = await RawSmtp.connect({ port: smtpPort, localAddress: UNTRUSTED });
  expect(await c.cmd('EHLO mx.elsewhere.test')).toMatch(/^250/);
  const reply = await c.send('alice@elsewhere.test', ['bob@example.com'], dotStuff(message));
  expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
  const queueId = reply.split(' ').pop() ?? '';
  await c.quit();

  const [got] = await smarthost.waitForMessages(1, 20_000);
  expect(got?.mailFrom).toBe('alice@elsewhere.test');
  expect(got?.rcptTo).toEqual(['bob@example.com']);
  const { received, rest } = withoutFirstReceived(got?.raw ?? Buffer.alloc(0));
  expect(received).toMatch(/^Received: from mx\.elsewhere\.test \(unknown \[127\.0\.0\.3\]\)/);
  expect(received).toContain('by relay.test');
  expect(received).toContain(queueId);
  expect(rest.equals(message)).toBe(true);
  expect(rest.toString('utf8')).toBe(message.toString('utf8')); // the readable diff if not
});

test('outbound from an allowed network: by MX through DNS to 127.0.0.2, STARTTLS, Message-ID and Date added', async () => {
  const c = await RawSmtp.connect({ port: smtpPort });
  expect(await c.cmd('EHLO exchange.example.com')).toMatch(/^250/);
  const message =
    'From: bob@example.com\r\nTo: carol@remote.test\r\nSubject: outbound\r\n\r\nHello Carol\r\n';
  expect(await c.send('bob@example.com', ['carol@remote.test'], message)).toMatch(/^250 2\.0\.0 /);
  await c.quit();

  const [got] = await mx.waitForMessages(1, 20_000);
  expect(got?.rcptTo).toEqual(['carol@remote.test']);
  expect(got?.mailFrom).toBe('bob@example.com');
  expect(got?.remoteAddress).toBe('127.0.0.1');
  expect(got?.secure).toBe(true);
  const text = got?.raw.toString('latin1') ?? '';
  expect(text).toMatch(/^Received: from exchange\.example\.com/);
  expect(text).toMatch(/\r\nMessage-ID: <[^>]+@relay\.test>\r\n/);
  expect(text).toMatch(/\r\nDate: /);
  expect(text.endsWith('\r\n\r\nHello Carol\r\n')).toBe(true);
  expect(dns.queries).toContainEqual({ name: 'remote.test', type: 'MX' });
  expect(dns.queries).toContainEqual({ name: 'mx.remote.test', type: 'A' });
});

/**
 * Each attempt and who refuses it: Moat's relay policy (550 5.7.1), or, for forms its strict
 * address syntax check does not take at all, smtp-server before the policy sees them (501 5.1.3).
 */
const RELAY_ATTEMPTS = [
  ['a foreign domain', 'dave@remote.test', '550 5.7.1'],
  ['the percent hack', 'dave%remote.test@example.com', '550 5.7.1'],
  ['a bang path', 'remote.test!dave@example.com', '550 5.7.1'],
  ['a source route', '@example.com:dave@remote.test', '550 5.7.1'],
  ['an address literal', 'dave@[127.0.0.2]', '550 5.7.1'],
  ['a quoted local part holding "@"', '"dave@remote.test"@example.com', '501 5.1.3'],
  ['two "@"', 'dave@remote.test@example.com', '501 5.1.3'],
  ['a trailing dot', 'dave@example.com.', '501 5.1.3'],
] as const;

test.each(RELAY_ATTEMPTS)('relay from outside refused: %s (%s) with %s', async (_name, recipient, reply) => {
  const c = await RawSmtp.connect({ port: smtpPort, localAddress: UNTRUSTED });
  expect(await c.cmd('EHLO spammer.test')).toMatch(/^250/);
  expect(await c.cmd('MAIL FROM:<spammer@elsewhere.test>')).toMatch(/^250/);
  expect((await c.cmd(`RCPT TO:<${recipient}>`)).slice(0, reply.length + 1)).toBe(`${reply} `);
  // With no recipient accepted there is nothing to send.
  expect(await c.cmd('DATA')).toMatch(/^5\d\d /);
  await c.quit();
});

test('nothing a stranger tried was queued or delivered', async () => {
  // Every attempt got its answer before this test; give a wrongly queued message time to show.
  await new Promise((r) => setTimeout(r, 2000));
  expect(mx.messages.map((m) => m.mailFrom)).toEqual(['bob@example.com']);
  expect(smarthost.messages.map((m) => m.mailFrom)).toEqual(['alice@elsewhere.test']);
  expect(moat.logs.filter((l) => l.event === 'edge.queued')).toHaveLength(2);
  const byPolicy = RELAY_ATTEMPTS.filter(([, , reply]) => reply.startsWith('550'));
  expect(moat.logs.filter((l) => l.event === 'edge.rcpt_rejected')).toHaveLength(byPolicy.length);
});

test('delivery ran in a thread of its own: deliveries logged from it, the edge from the main thread', async () => {
  expect(moat.logs.filter((l) => l.event === 'delivery.thread_started')).toHaveLength(1);
  const delivered = moat.logs.filter((l) => l.event === 'delivery.delivered');
  expect(delivered).toHaveLength(2);
  for (const line of delivered) expect(line.thread).toBe('delivery');
  for (const line of moat.logs.filter((l) => l.event === 'edge.queued')) expect(line.thread).toBeUndefined();
  // One node, with the thread's figures in its heartbeat: the smart-host route and the MX route.
  const starting = moat.logs.find((l) => l.event === 'config.loaded');
  expect(starting).toMatchObject({ version: expect.any(String), nodeVersion: process.version });
  const client = connect({ url: redis.url }, 'producer');
  try {
    await whenReady(client);
    await expect
      .poll(async () => (await liveNodes(client, keysFor('relay')))[0]?.stats?.deliveryRoutes, {
        timeout: 12_000,
      })
      .toBeGreaterThanOrEqual(2);
    const nodes = await liveNodes(client, keysFor('relay'));
    expect(nodes.map((n) => n.roles)).toEqual([['edge', 'worker', 'admin']]);
    // The Node.js it runs on, for rolling upgrades (the test spawns moat with its own Node).
    expect(nodes[0]?.nodeVersion).toBe(process.version);
  } finally {
    client.disconnect();
  }
});

test('delivery.bodyCache: a body the edge queued goes to the delivery thread in memory, and leaves from there byte for byte', async () => {
  // The route paused, so the body is in the thread before its job can run.
  const parsed = parseConfig({
    hostname: 'relay.test',
    redis: { url: redis.url, prefix: 'relay' },
    inbound: { domains: { 'example.com': `[127.0.0.1]:${smarthost.port}` } },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const routeId = compileRelayPolicy(parsed.config).exact.get('example.com')?.route.id ?? '';
  const client = connect({ url: redis.url }, 'producer');
  const spool = spoolFromConfig(parsed.config, client, 'relay-test');
  const stats = async () => (await liveNodes(client, keysFor('relay')))[0]?.stats ?? {};
  try {
    await whenReady(client);
    // The figures of the deliveries so far (the tests before), once the heartbeat has them all.
    const consulted = (s: Record<string, number>) => (s.bodyCacheHits ?? 0) + (s.bodyCacheMisses ?? 0);
    const delivered = smarthost.messages.length + mx.messages.length;
    await expect.poll(async () => consulted(await stats()), { timeout: 12_000 }).toBe(delivered);
    const before = await stats();
    await pauseRoute(spool, routeId);
    const message = Buffer.from(`Subject: from memory\r\n\r\n.a dot first\r\n${'x'.repeat(300_000)}\r\n`);
    const c = await RawSmtp.connect({ port: smtpPort, localAddress: UNTRUSTED });
    expect(await c.cmd('EHLO mx.elsewhere.test')).toMatch(/^250/);
    expect(await c.send('alice@elsewhere.test', ['bob@example.com'], dotStuff(message))).toMatch(/^250 /);
    await c.quit();
    await resumeRoute(spool, routeId);
    const got = await smarthost.waitForMessages(delivered - mx.messages.length + 1, 20_000);
    expect(withoutFirstReceived(got.at(-1)?.raw ?? Buffer.alloc(0)).rest.equals(message)).toBe(true);
    await expect
      .poll(async () => (await stats()).bodyCacheHits, { timeout: 12_000 })
      .toBe((before.bodyCacheHits ?? 0) + 1);
    expect((await stats()).bodyCacheMisses).toBe(before.bodyCacheMisses ?? 0);
  } finally {
    await spool.close();
    client.disconnect();
  }
}, 60_000);
