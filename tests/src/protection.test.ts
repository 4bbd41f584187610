/**
 * Protection before DATA, end to end, through real `moat edge` processes behind the PROXY
 * protocol (so a test can be any client address, IPv4 or IPv6, as a load balancer would show
 * it): DNS lists published by the testkit's DNS server, recipient validation against a static
 * file, a real slapd and an SMTP callout to the route's smart host, envelope hygiene; then rate
 * limits and greylisting enforced together by two edges sharing one Redis.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { dnsblQueryName } from '@moat/policy';
import {
  type DnsServer,
  freePort,
  RawSmtp,
  type RedisServer,
  type Slapd,
  type SmtpSink,
  startDns,
  startRedis,
  startSlapd,
  startSmtpSink,
} from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MoatProcess, startMoat } from './moat-process.js';

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let slapd: Slapd;
let smarthost: SmtpSink;
let ldapRoute: SmtpSink;
const edges: { moat: MoatProcess; port: number }[] = [];
let single: { moat: MoatProcess; port: number };
const KNOWN = new Set(['alice@example.com', 'bob@example.com']);
/** The callout's smart host: knows KNOWN, refuses everyone else with 550 5.1.1. */
const startSmarthost = (port?: number) =>
  startSmtpSink({
    tls: false,
    ...(port === undefined ? {} : { port }),
    onRcpt: (address) => (KNOWN.has(address) ? undefined : { code: 550, message: '5.1.1 User unknown' }),
  });

const ENTRIES = `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
dc: example
o: Example

dn: cn=Carol,dc=example,dc=org
objectClass: inetOrgPerson
objectClass: moatMailRecipient
cn: Carol
sn: Carol
mail: carol@example.org
proxyAddresses: SMTP:carol@example.org
proxyAddresses: smtp:c.jones@example.org
`;

async function edge(name: string, config: Record<string, unknown>) {
  const port = await freePort();
  const moat = await startMoat(
    'edge',
    {
      hostname: 'relay.test',
      dataDir: dir,
      redis: { url: redis.url, prefix: 'protect' },
      smtp: { listen: [`127.0.0.1:${port}`], proxyProtocol: true, trustedProxies: ['127.0.0.1/32'] },
      inbound: {
        domains: {
          'example.com': `[127.0.0.1]:${smarthost.port}`,
          'example.org': `[127.0.0.1]:${ldapRoute.port}`,
          'example.net': '[127.0.0.1]:9',
          'sales.example.net': '[127.0.0.1]:9',
          'open.example': '[127.0.0.1]:9',
        },
      },
      outbound: { clients: ['10.0.0.0/8'] },
      dns: { servers: [dns.server], timeout: '1s' },
      admin: { listen: null },
      ...config,
    },
    dir,
    name,
  );
  await moat.waitForEvent('moat.ready', 20_000);
  return { moat, port };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-protect-'));
  await writeFile(path.join(dir, 'recipients.txt'), '# example.net\ndave@example.net\n@sales.example.net\n');
  dns = await startDns({
    // 192.0.2.66 and 2001:db8::66 are listed; 192.0.2.77 is listed but also on the allow list.
    '66.2.0.192.bl.test': { A: ['127.0.0.2'] },
    [dnsblQueryName('2001:db8::66', 'bl.test') ?? '']: { A: ['127.0.0.2'] },
    '77.2.0.192.bl.test': { A: ['127.0.0.2'] },
    '77.2.0.192.wl.test': { A: ['127.0.9.1'] },
  });
  dns.fail('66.2.0.192.slow.test', 'timeout');
  dns.fail('55.2.0.192.slow.test', 'timeout');
  [redis, slapd, smarthost, ldapRoute] = await Promise.all([
    startRedis(),
    startSlapd({ suffix: 'dc=example,dc=org', entries: ENTRIES }),
    startSmarthost(),
    startSmtpSink({ tls: false }),
  ]);
  const checks = {
    dnsbl: {
      sites: ['bl.test*3', 'wl.test=127.0.[0..255].[0..255]*-2', 'slow.test*3'],
      threshold: 3,
      timeout: '500ms',
    },
    recipients: {
      domains: {
        'example.com': [{ callout: {} }],
        'example.org': [
          {
            ldap: {
              url: slapd.url,
              base: 'dc=example,dc=org',
              bindDn: slapd.rootDn,
              bindPassword: slapd.rootPassword,
              timeout: '1s',
            },
          },
        ],
        'example.net': [{ file: path.join(dir, 'recipients.txt') }],
        'sales.example.net': [{ file: path.join(dir, 'recipients.txt') }],
      },
      fileCheckInterval: '0s',
    },
  };
  single = await edge('single', checks);
  const shared = {
    limits: {
      client: { connections: '6/1m', messages: '4/1m' },
      exempt: { clients: ['192.0.2.250/32'] },
    },
    greylisting: { enabled: true, delay: '2s' },
  };
  edges.push(await edge('edge1', shared), await edge('edge2', shared));
}, 90_000);

afterAll(async () => {
  await Promise.all([single?.moat.stop(), ...edges.map((e) => e.moat.stop())]);
  await Promise.all([smarthost?.close(), ldapRoute?.close(), slapd?.stop(), redis?.stop(), dns?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A session as a load balancer passes it on: the PROXY header names the real client. */
async function client(port: number, ip: string): Promise<RawSmtp> {
  const family = ip.includes(':') ? 'TCP6' : 'TCP4';
  const own = ip.includes(':') ? '::1' : '127.0.0.1';
  const c = await RawSmtp.connect({
    port,
    preamble: `PROXY ${family} ${ip} ${own} 40000 25\r\n`,
    timeoutMs: 10_000,
  });
  await c.cmd('EHLO client.test');
  return c;
}

async function rcpt(port: number, ip: string, to: string, from = 'someone@elsewhere.test'): Promise<string> {
  const c = await client(port, ip);
  try {
    await c.cmd(`MAIL FROM:<${from}>`);
    return await c.cmd(`RCPT TO:<${to}>`);
  } finally {
    c.destroy();
  }
}

describe('DNS block and allow lists', () => {
  test.each([
    [
      'a listed IPv4 client',
      '192.0.2.66',
      '554 5.7.1 Service unavailable; client [192.0.2.66] blocked using bl.test',
    ],
    [
      'a listed IPv6 client (nibble query)',
      '2001:db8::66',
      '554 5.7.1 Service unavailable; client [2001:db8::66] blocked using bl.test',
    ],
    ['a client on the allow list too (score 3 - 2)', '192.0.2.77', '250'],
    ['an unlisted client whose slow zone timed out', '192.0.2.55', '250'],
    ['an allow-listed network, though listed', '10.0.0.66', '250'],
  ])('%s at RCPT', async (_what, ip, expected) => {
    expect(await rcpt(single.port, ip, 'alice@example.com')).toMatch(
      new RegExp(`^${expected.replace(/[.[\]()]/g, '\\$&')}`),
    );
  });
});

describe('recipient validation', () => {
  test.each([
    ['a static list: listed', 'dave@example.net', '250'],
    ['a static list: catch-all domain', 'anyone@sales.example.net', '250'],
    [
      'a static list: not listed',
      'eve@example.net',
      '550 5.1.1 <eve@example.net>: Recipient address rejected: User unknown',
    ],
    ['LDAP: mail', 'carol@example.org', '250'],
    ['LDAP: a secondary proxyAddresses', 'c.jones@example.org', '250'],
    [
      'LDAP: unknown',
      'mallory@example.org',
      '550 5.1.1 <mallory@example.org>: Recipient address rejected: User unknown',
    ],
    ['callout: known', 'alice@example.com', '250'],
    [
      'callout: unknown',
      'zed@example.com',
      '550 5.1.1 <zed@example.com>: Recipient address rejected: User unknown',
    ],
    ['a domain without sources accepts everyone', 'x@open.example', '250'],
  ])('%s', async (_what, to, expected) => {
    expect(await rcpt(single.port, '198.51.100.1', to)).toMatch(
      new RegExp(`^${expected.replace(/[.[\]()<>]/g, '\\$&')}`),
    );
  });

  test('callout: one probe connection for many checks', async () => {
    const before = smarthost.connections;
    for (const to of ['bob@example.com', 'yan@example.com', 'xu@example.com'])
      await rcpt(single.port, '198.51.100.2', to);
    expect(smarthost.connections - before).toBeLessThanOrEqual(1);
  });

  test('slapd stopped: a cached known recipient is still accepted, an unknown one gets 450, never 550', async () => {
    expect(await rcpt(single.port, '198.51.100.3', 'carol@example.org')).toMatch(/^250/); // cached now
    await slapd.kill();
    try {
      expect(await rcpt(single.port, '198.51.100.3', 'carol@example.org')).toMatch(/^250/);
      expect(await rcpt(single.port, '198.51.100.3', 'nobody-yet@example.org')).toBe(
        '450 4.1.1 <nobody-yet@example.org>: Recipient address rejected: unverified address, try again later',
      );
    } finally {
      await slapd.restart();
    }
    expect(await rcpt(single.port, '198.51.100.3', 'nobody-yet@example.org')).toMatch(/^550 5\.1\.1/);
  });

  test('callout smart host stopped: a cached known recipient is still accepted, an unknown one gets 450, never 550', async () => {
    expect(await rcpt(single.port, '198.51.100.5', 'alice@example.com')).toMatch(/^250/); // cached now
    const port = smarthost.port;
    await smarthost.close();
    try {
      expect(await rcpt(single.port, '198.51.100.5', 'alice@example.com')).toMatch(/^250/);
      // Asked twice: the failed callout kept nothing, not even an "unknown".
      for (let i = 0; i < 2; i++)
        expect(await rcpt(single.port, '198.51.100.5', 'never-seen@example.com')).toBe(
          '450 4.1.1 <never-seen@example.com>: Recipient address rejected: unverified address, try again later',
        );
    } finally {
      smarthost = await startSmarthost(port);
    }
    // Nothing was kept while it was down: asked again, and refused for good now.
    expect(await rcpt(single.port, '198.51.100.5', 'never-seen@example.com')).toMatch(/^550 5\.1\.1/);
  });

  test('the static list is reloaded when the file changes', async () => {
    expect(await rcpt(single.port, '198.51.100.4', 'frank@example.net')).toMatch(/^550/);
    await writeFile(path.join(dir, 'recipients.txt'), 'dave@example.net\nfrank@example.net\n');
    await expect
      .poll(() => rcpt(single.port, '198.51.100.4', 'frank@example.net'), { timeout: 5000 })
      .toMatch(/^250/);
  });
});

test('the image health check reaches an edge behind the PROXY protocol with smtp+proxy://', async () => {
  const check = path.resolve(import.meta.dirname, '../../apps/moat/bin/healthcheck.mjs');
  const r = spawnSync(process.execPath, [check], {
    env: { PATH: process.env.PATH ?? '', MOAT_HEALTHCHECK: `smtp+proxy://127.0.0.1:${single.port}` },
    encoding: 'utf8',
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

describe('envelope hygiene', () => {
  async function raw(lines: Buffer[]): Promise<string[]> {
    const c = await client(single.port, '198.51.100.9');
    try {
      const replies: string[] = [];
      for (const line of lines) replies.push(await c.cmd(line.toString('latin1')));
      return replies;
    } finally {
      c.destroy();
    }
  }
  const bytes = (...parts: (string | number[])[]) =>
    Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

  test.each([
    ['valid UTF-8 with SMTPUTF8', bytes('MAIL FROM:<jörg@example.de> SMTPUTF8'), /^250/],
    ['valid UTF-8 without SMTPUTF8', bytes('MAIL FROM:<jörg@example.de>'), /^553 5\.6\.7/],
    ['not UTF-8, with SMTPUTF8', bytes('MAIL FROM:<j', [0xf6], 'rg@example.de> SMTPUTF8'), /^501 5\.1\.7/],
    ['not UTF-8, without SMTPUTF8', bytes('MAIL FROM:<j', [0xc3, 0x28], 'rg@example.de>'), /^501 5\.1\.7/],
  ])('MAIL: %s', async (_what, line, expected) => {
    expect((await raw([line]))[0]).toMatch(expected);
  });

  test.each([
    [
      'valid UTF-8 with SMTPUTF8',
      'MAIL FROM:<a@example.de> SMTPUTF8',
      bytes('RCPT TO:<dave@example.net>'),
      /^250/,
    ],
    [
      'not UTF-8',
      'MAIL FROM:<a@example.de> SMTPUTF8',
      bytes('RCPT TO:<d', [0xff], 've@example.net>'),
      /^553 5\.1\.3/,
    ],
    [
      '8-bit without SMTPUTF8',
      'MAIL FROM:<a@example.de>',
      bytes('RCPT TO:<dävé@example.net>'),
      /^553 5\.6\.7/,
    ],
  ])('RCPT: %s', async (_what, mail, line, expected) => {
    const [m, r] = await raw([Buffer.from(mail), line]);
    expect(m).toMatch(/^250/);
    expect(r).toMatch(expected);
  });
});

describe('rate limits and greylisting, shared by two edges', () => {
  test('messages per client: the limit holds on the sum across both edges, with the limit in a 450', async () => {
    const replies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const c = await client((edges[i % 2] as { port: number }).port, '203.0.113.5');
      try {
        replies.push(await c.cmd('MAIL FROM:<bulk@elsewhere.test>'));
      } finally {
        c.destroy();
      }
    }
    expect(replies.slice(0, 4).every((r) => r.startsWith('250'))).toBe(true);
    expect(replies.slice(4)).toEqual([
      '450 4.7.1 Rate limit exceeded: 4/1m messages per client address, try again later',
      '450 4.7.1 Rate limit exceeded: 4/1m messages per client address, try again later',
    ]);
  });

  test('connections per client: 421 at connect once over, on either edge; an exempt network is never limited', async () => {
    const greetings: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = await RawSmtp.connect({
        port: (edges[i % 2] as { port: number }).port,
        preamble: 'PROXY TCP4 203.0.113.6 127.0.0.1 40000 25\r\n',
        greeting: false,
      });
      greetings.push(await c.reply());
      c.destroy();
    }
    expect(greetings.slice(0, 6).every((g) => g.startsWith('220'))).toBe(true);
    expect(greetings.slice(6)).toEqual([
      '421 4.7.0 Rate limit exceeded: 6/1m connections per client address, try again later',
      '421 4.7.0 Rate limit exceeded: 6/1m connections per client address, try again later',
    ]);
    for (let i = 0; i < 8; i++) {
      const c = await client((edges[i % 2] as { port: number }).port, '192.0.2.250');
      c.destroy();
    }
  });

  test('greylisting: the first try is 450, an early retry on the other edge too, a retry after the delay passes', async () => {
    const [a, b] = edges;
    if (!a || !b) throw new Error('two edges');
    const first = await rcpt(a.port, '203.0.113.7', 'dave@example.net', 'news@sender.test');
    expect(first).toMatch(/^450 4\.7\.1 Greylisted, please try again in [12]s$/);
    expect(await rcpt(b.port, '203.0.113.8', 'dave@example.net', 'news@sender.test')).toMatch(
      /^450 4\.7\.1 Greylisted/,
    );
    await new Promise((r) => setTimeout(r, 2100));
    // A neighbour in the same /24 retrying counts as the same sender.
    expect(await rcpt(b.port, '203.0.113.9', 'dave@example.net', 'news@sender.test')).toMatch(/^250/);
    expect(await rcpt(a.port, '203.0.113.7', 'dave@example.net', 'news@sender.test')).toMatch(/^250/);
    // Allow-listed clients are never greylisted.
    expect(await rcpt(a.port, '10.9.9.9', 'dave@example.net', 'fresh@sender.test')).toMatch(/^250/);
  });
});
