/**
 * `moat policy test`: what Moat would answer at each phase, and why, for a session described
 * on the command line, read from a real config, DNS server and Redis, without sending mail and
 * without counting anything.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, keysFor, whenReady } from '@moat/spool';
import { type DnsServer, type RedisServer, startDns, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runMoat } from './moat-process.js';

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let file: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-policy-'));
  [redis, dns] = await Promise.all([startRedis(), startDns({ '66.2.0.192.bl.test': { A: ['127.0.0.2'] } })]);
  await writeFile(path.join(dir, 'rcpt.txt'), 'bob@example.com\n');
  file = path.join(dir, 'moat.yaml');
  await writeFile(
    file,
    JSON.stringify({
      hostname: 'relay.test',
      redis: { url: redis.url, prefix: 'pt' },
      inbound: { domains: { 'example.com': '[10.0.0.5]' } },
      outbound: { clients: ['10.0.0.0/8'] },
      dns: { servers: [dns.server], timeout: '1s' },
      dnsbl: { sites: ['bl.test*2'], threshold: 2 },
      recipients: { domains: { 'example.com': [{ file: path.join(dir, 'rcpt.txt') }] } },
      limits: { client: { messages: '3/1h' } },
      greylisting: { enabled: true },
      filters: { clamav: {}, authentication: {} },
    }),
  );
});
afterAll(async () => {
  await redis?.stop();
  await dns?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const policy = (...args: string[]) => runMoat(['policy', 'test', '--config', file, ...args]);

test('an Internet client: route, recipient validation, greylisting, the filters that would run', async () => {
  const r = await policy(
    '--ip',
    '198.51.100.7',
    '--from',
    'alice@elsewhere.test',
    '--to',
    'bob@example.com,eve@example.com,x@other.test',
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const lines = r.stdout;
  expect(lines).toMatch(
    /^connect 198\.51\.100\.7\s+220\n\s+not trusted: inbound mail only\n\s+dnsbl score 0 \(threshold 2\)$/m,
  );
  expect(lines).toMatch(
    /^mail {4}<alice@elsewhere\.test>\s+250\n\s+client-messages 198\.51\.100\.7: 0 of 3\/1h used$/m,
  );
  expect(lines).toMatch(
    /^rcpt {4}<bob@example\.com>\s+450 4\.7\.1 Greylisted, please try again later\n\s+inbound: route \[10\.0\.0\.5\]\n\s+recipient known \(file\)\n\s+greylisting: first try$/m,
  );
  expect(lines).toMatch(
    /^rcpt {4}<eve@example\.com>\s+550 5\.1\.1 <eve@example\.com>: Recipient address rejected: User unknown$/m,
  );
  expect(lines).toMatch(/^rcpt {4}<x@other\.test>\s+550 5\.7\.1 Relaying denied\n\s+relay: relay-denied$/m);
  expect(lines).toMatch(/^data {4}inbound\s+after DATA: clamav, authentication \(SPF, DKIM, DMARC, ARC\)$/m);
});

test('nothing is counted or remembered: no rate-limit points, no greylisting triplet', async () => {
  await policy('--ip', '198.51.100.8', '--from', 'a@elsewhere.test', '--to', 'bob@example.com');
  await policy('--ip', '198.51.100.8', '--from', 'a@elsewhere.test', '--to', 'bob@example.com');
  const direct = connect({ url: redis.url }, 'producer');
  await whenReady(direct);
  try {
    const keys = keysFor('pt');
    expect(await direct.keys(`${keys.root}:*`)).toEqual([]);
  } finally {
    direct.disconnect();
  }
});

test('a listed client is refused at RCPT; an allow-listed one relays, outbound, not greylisted', async () => {
  const listed = await policy('--ip', '192.0.2.66', '--to', 'bob@example.com');
  expect(listed.stdout).toMatch(/dnsbl score 2 \(threshold 2\): listed by bl\.test\*2/);
  expect(listed.stdout).toMatch(
    /^rcpt {4}<bob@example\.com>\s+554 5\.7\.1 Service unavailable; client \[192\.0\.2\.66\] blocked using bl\.test$/m,
  );
  const inside = await policy('--ip', '10.1.2.3', '--from', 'ceo@example.com', '--to', 'partner@remote.test');
  expect(inside.stdout).toMatch(/^connect 10\.1\.2\.3\s+220\n\s+trusted: may relay \(outbound\)$/m);
  expect(inside.stdout).toMatch(
    /^rcpt {4}<partner@remote\.test>\s+250\n\s+outbound: route MX of the recipient domain$/m,
  );
  expect(inside.stdout).toMatch(/^data {4}outbound\s+after DATA: clamav$/m);
});

test('--json, and bad usage', async () => {
  const r = await policy('--ip', '198.51.100.9', '--to', 'eve@example.com', '--json');
  const { steps } = JSON.parse(r.stdout) as { steps: { phase: string; answer: string }[] };
  expect(steps.map((s) => s.phase)).toEqual(['connect', 'helo', 'mail', 'rcpt', 'data']);
  expect(steps[3]?.answer).toMatch(/^550 5\.1\.1/);
  const bad = await runMoat(['policy', 'test', '--config', file, '--ip', '198.51.100.9']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('policy test needs --ip IP and --to');
});
