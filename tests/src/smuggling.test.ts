/**
 * SMTP smuggling (the 2023 class): a message whose body holds "<LF>.<LF>" (or another lone dot
 * between odd line endings) followed by MAIL FROM / RCPT TO / DATA can end DATA early at a
 * lenient next hop and smuggle a second message past the first hop's checks. Moat must never
 * pass such a sequence on: it makes every line ending CRLF when it takes the message and
 * dot-stuffs when it sends it, so the next hop sees one message with the text lines in it.
 *
 * The next hop here is a deliberately lenient receiver (lenient-smtp.ts). The control tests
 * send it the raw bytes directly and watch it be fooled; the Moat test sends the same bytes
 * through a real `moat start` and expects exactly one message per message sent. Both layers
 * are checked on their own: the bodies as stored in Redis (the route paused meanwhile) must be
 * CRLF-only, because the SMTP client library's own normalisation on the way out would hide a
 * regression of the edge's.
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
  type Spool,
  spoolFromConfig,
  whenReady,
} from '@moat/spool';
import { type DnsServer, freePort, RawSmtp, type RedisServer, startDns, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type LenientServer, startLenientServer } from './lenient-smtp.js';
import { type MoatProcess, startMoat } from './moat-process.js';

/** The end-of-data look-alikes of the 2023 research, each hidden in a body. */
const VARIANTS = [
  { name: '<LF>.<LF>', seq: '\n.\n' },
  { name: '<LF>.<CRLF>', seq: '\n.\r\n' },
  { name: '<CR>.<CR>', seq: '\r.\r' },
  { name: '<CRLF>.<LF>', seq: '\r\n.\n' },
  { name: '<CRLF>.<CR>', seq: '\r\n.\r' },
] as const;

const SMUGGLED = [
  'MAIL FROM:<evil@elsewhere.test>',
  'RCPT TO:<victim@example.com>',
  'DATA',
  'From: ceo@example.com',
  'Subject: smuggled',
  '',
  'smuggled body',
];

/** A message (CRLF everywhere but at the smuggling sequence) that ends with CRLF. */
function smugglingMessage(name: string, seq: string): string {
  return (
    `From: alice@elsewhere.test\r\nTo: bob@example.com\r\nSubject: smuggling ${name}\r\n\r\n` +
    `first line${seq}${SMUGGLED.join('\r\n')}\r\n`
  );
}

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let lenient: LenientServer;
let moat: MoatProcess;
let smtpPort: number;
let producer: ReturnType<typeof connect>;
let spool: Spool;
let routeId: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-smuggling-'));
  redis = await startRedis({ appendfsync: 'always' });
  dns = await startDns();
  lenient = await startLenientServer();
  smtpPort = await freePort();
  const config = {
    hostname: 'relay.test',
    dataDir: dir,
    redis: { url: redis.url, prefix: 'smuggling' },
    smtp: { listen: [`127.0.0.1:${smtpPort}`] },
    inbound: { domains: { 'example.com': `[127.0.0.1]:${lenient.port}` } },
    // The edge and delivery on one event loop (relay-e2e covers the delivery thread).
    delivery: { retry: ['1s'], thread: false },
    dns: { servers: [dns.server] },
    admin: { listen: null },
  };
  const parsed = parseConfig(config);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  routeId = compileRelayPolicy(parsed.config).exact.get('example.com')?.route.id ?? '';
  producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer);
  spool = spoolFromConfig(parsed.config, producer, 'smuggling-test');
  moat = await startMoat('start', config, dir, 'smuggling');
  await moat.waitForEvent('moat.ready');
});
afterAll(async () => {
  await moat?.stop();
  await spool?.close();
  producer?.disconnect();
  await lenient?.close();
  await dns?.close();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.each(VARIANTS)(
  'control: the raw bytes with $name fool the lenient receiver into 2 messages',
  async ({ name, seq }) => {
    const before = lenient.messages.length;
    const c = await RawSmtp.connect({ port: lenient.port });
    expect(await c.cmd('EHLO attacker.test')).toMatch(/^250/);
    expect(
      await c.send('alice@elsewhere.test', ['control@example.com'], smugglingMessage(name, seq)),
    ).toMatch(/^250/);
    await c.quit();
    const got = lenient.messages.slice(before);
    expect(got).toHaveLength(2);
    expect(got[0]?.rcptTo).toEqual(['control@example.com']);
    expect(got[1]?.mailFrom).toBe('evil@elsewhere.test');
    expect(got[1]?.rcptTo).toEqual(['victim@example.com']);
  },
);

test('through Moat: one message per message sent, never a smuggled one; text kept, CRLF only, dot-stuffed', async () => {
  await pauseRoute(spool, routeId);
  const c = await RawSmtp.connect({ port: smtpPort });
  expect(await c.cmd('EHLO attacker.test')).toMatch(/^250/);
  const ids: string[] = [];
  for (const [i, { name, seq }] of VARIANTS.entries()) {
    const reply = await c.send('alice@elsewhere.test', [`bob+${i}@example.com`], smugglingMessage(name, seq));
    expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    ids.push(reply.split(' ').pop() ?? '');
  }
  await c.quit();
  // As stored: CRLF only, the lone dot a line of its own.
  for (const [i, id] of ids.entries()) {
    const stored = (await spool.readBody(id))?.toString('latin1') ?? '(no body)';
    expect(/\r(?!\n)|(?<!\r)\n/.test(stored), VARIANTS[i]?.name).toBe(false);
    expect(stored, VARIANTS[i]?.name).toContain('\r\nfirst line\r\n.\r\nMAIL FROM:<evil@elsewhere.test>\r\n');
  }
  await resumeRoute(spool, routeId);

  const viaMoat = () => lenient.messages.filter((m) => m.rcptTo.some((r) => r.startsWith('bob+')));
  await expect.poll(() => viaMoat().length, { timeout: 20_000 }).toBeGreaterThanOrEqual(VARIANTS.length);
  // A smuggled message would end at the real terminator, after Moat's delivery got its 250:
  // give one the time to show up.
  await new Promise((r) => setTimeout(r, 1500));

  expect(lenient.messages.filter((m) => m.mailFrom === 'evil@elsewhere.test')).toHaveLength(
    VARIANTS.length, // the control runs' smuggled messages, and no more
  );
  const delivered = viaMoat();
  expect(delivered).toHaveLength(VARIANTS.length);
  for (const [i, { name }] of VARIANTS.entries()) {
    const mine = delivered.filter((m) => m.rcptTo.includes(`bob+${i}@example.com`));
    expect(mine, name).toHaveLength(1);
    const message = mine[0];
    if (!message) continue;
    expect(message.mailFrom, name).toBe('alice@elsewhere.test');
    // The text lines are all there, in order, the lone dot among them.
    const body = message.lines.slice(message.lines.indexOf('') + 1);
    expect(body, name).toEqual(['first line', '.', ...SMUGGLED]);
    // On the wire: CRLF only, and the lone dot was dot-stuffed.
    expect(/\r(?!\n)|(?<!\r)\n/.test(message.raw), name).toBe(false);
    expect(message.raw, name).toContain('\r\nfirst line\r\n..\r\nMAIL FROM:<evil@elsewhere.test>\r\n');
  }
}, 60_000);

test('with delivery.thread false the edge and delivery share the main thread, and its bodies in memory', async () => {
  expect(moat.logs.filter((l) => l.event === 'delivery.thread_started')).toHaveLength(0);
  const delivered = moat.logs.filter((l) => l.event === 'delivery.delivered');
  expect(delivered.length).toBeGreaterThanOrEqual(VARIANTS.length);
  for (const line of delivered) expect(line.thread).toBeUndefined();
  // delivery.bodyCache: the route was paused, so every body was in memory before its job ran.
  const stats = async () => (await liveNodes(producer, keysFor('smuggling')))[0]?.stats ?? {};
  await expect.poll(async () => (await stats()).bodyCacheHits, { timeout: 12_000 }).toBe(VARIANTS.length);
  expect((await stats()).bodyCacheMisses).toBe(0);
});
