import { describe, expect, test } from 'vitest';
import { parseConfig } from './config.js';
import { answerMatches, dnsblQueryName, parseDnsblSite, scoreDnsbl } from './dnsbl.js';
import { replyText } from './replies.js';
import {
  addressEncodingError,
  decideRecipientAnswers,
  dnsblRefusal,
  greylistTriplet,
  isValidHelo,
  rateLimited,
} from './session-checks.js';
import { parseRate } from './units.js';

const wire = (r: { code: number; enhanced: string; text: string } | null | undefined) =>
  r ? `${r.code} ${replyText(r)}` : null;

describe('DNSBL sites (postscreen syntax)', () => {
  test.each([
    ['zen.spamhaus.org*3', 'zen.spamhaus.org', 3, null],
    ['b.barracudacentral.org*2', 'b.barracudacentral.org', 2, null],
    ['bl.example.net', 'bl.example.net', 1, null],
    ['list.dnswl.org=127.0.[0..255].[0..255]*-2', 'list.dnswl.org', -2, '127.0.x.x'],
    ['Zen.Spamhaus.ORG=127.0.0.[2;3;9]*3', 'zen.spamhaus.org', 3, '127.0.0.2/3/9'],
  ])('%s', (text, zone, weight, pattern) => {
    const r = parseDnsblSite(text);
    if (!r.ok) throw new Error(r.error);
    expect(r.value).toMatchObject({ zone, weight, text });
    expect(r.value.pattern === null).toBe(pattern === null);
  });

  test.each([
    '',
    'nodots',
    'zen.spamhaus.org*x',
    'zen.spamhaus.org=127.0.0*2',
    'x.org=127.0.0.[9..2]',
    'x.org=127.0.0.256',
  ])('%j is refused with the syntax in the message', (text) => {
    const r = parseDnsblSite(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain('zone[=pattern][*weight]');
  });

  test('patterns: ranges and lists per octet; without one, any 127.x answer counts', () => {
    const site = (t: string) => {
      const r = parseDnsblSite(t);
      if (!r.ok) throw new Error(r.error);
      return r.value;
    };
    expect(answerMatches(site('z.example=127.0.0.[2;4]'), '127.0.0.4')).toBe(true);
    expect(answerMatches(site('z.example=127.0.0.[2;4]'), '127.0.0.3')).toBe(false);
    expect(answerMatches(site('z.example=127.0.[0..255].[0..255]'), '127.0.9.200')).toBe(true);
    expect(answerMatches(site('z.example=127.0.[0..255].[0..255]'), '127.1.0.1')).toBe(false);
    expect(answerMatches(site('z.example'), '127.0.0.2')).toBe(true);
    expect(answerMatches(site('z.example'), '10.0.0.2')).toBe(false);
  });

  test.each([
    ['192.0.2.99', 'zen.example', '99.2.0.192.zen.example'],
    ['::ffff:192.0.2.99', 'zen.example', '99.2.0.192.zen.example'],
    [
      '2001:db8::1',
      'zen.example',
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example',
    ],
    ['not an ip', 'zen.example', null],
  ])('query name of %s', (ip, zone, name) => {
    expect(dnsblQueryName(ip, zone)).toBe(name);
  });

  test('the score sums the weights of the sites that list the client; a site that did not answer is skipped', () => {
    const sites = [
      'zen.example*3',
      'barracuda.example*2',
      'wl.example=127.0.[0..255].[0..255]*-2',
      'slow.example*5',
    ].map((t) => {
      const r = parseDnsblSite(t);
      if (!r.ok) throw new Error(r.error);
      return r.value;
    });
    const answers = new Map<string, string[] | null>([
      ['zen.example*3', ['127.0.0.2']],
      ['barracuda.example*2', []],
      ['wl.example=127.0.[0..255].[0..255]*-2', ['127.0.15.1']],
      ['slow.example*5', null],
    ]);
    const s = scoreDnsbl(sites, answers);
    expect(s.score).toBe(1);
    expect(s.listedBy.map((x) => x.zone)).toEqual(['zen.example', 'wl.example']);
    expect(s.unanswered.map((x) => x.zone)).toEqual(['slow.example']);
    expect(wire(dnsblRefusal('192.0.2.99', s.listedBy))).toBe(
      '554 5.7.1 Service unavailable; client [192.0.2.99] blocked using zen.example',
    );
  });

  test('dnsbl config: a bad site is named with its index', () => {
    const r = parseConfig({ hostname: 'relay.example.com', dnsbl: { sites: ['zen.example*3', 'bad site'] } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]?.path).toBe('dnsbl.sites[1]');
  });
});

describe('envelope hygiene', () => {
  test.each([
    ['alice@example.com', false, 'sender', null],
    ['jörg@exämple.de', true, 'sender', null],
    ['jörg@exämple.de', false, 'sender', '553 5.6.7 Non-ASCII sender address without SMTPUTF8'],
    ['jörg@example.de', false, 'recipient', '553 5.6.7 Non-ASCII recipient address without SMTPUTF8'],
    ['a\uFFFDb@example.com', true, 'sender', '501 5.1.7 Bad sender address syntax: not valid UTF-8'],
    ['a\uFFFDb@example.com', false, 'recipient', '553 5.1.3 Bad recipient address syntax: not valid UTF-8'],
    ['用户@例子.广告', true, 'recipient', null],
  ] as const)('%j smtputf8=%s as %s → %s', (address, utf8, role, expected) => {
    expect(wire(addressEncodingError(address, utf8, role))).toBe(expected);
  });

  test.each([
    ['mx.example.com', true],
    ['mx.example.com.', true],
    ['[192.0.2.1]', true],
    ['[IPv6:2001:db8::1]', true],
    ['localhost', false],
    ['[2001:db8::1]', false],
    ['[300.1.1.1]', false],
    ['bad_name!', false],
    ['', false],
  ])('HELO %j valid: %s', (helo, valid) => {
    expect(isValidHelo(helo)).toBe(valid);
  });
});

describe('recipient validation', () => {
  test.each([
    [['known'], 'accept', 'known', null],
    [['unknown', 'known'], 'accept', 'known', null],
    [['error', 'known'], 'accept', 'known', null],
    [
      ['unknown'],
      'reject',
      'unknown',
      '550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown',
    ],
    [
      ['unknown', 'unknown'],
      'reject',
      'unknown',
      '550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown',
    ],
    // Exchange down for maintenance: never a 550 for what cannot be checked.
    [
      ['error'],
      'defer',
      null,
      '450 4.1.1 <bob@example.com>: Recipient address rejected: unverified address, try again later',
    ],
    [
      ['unknown', 'error'],
      'defer',
      null,
      '450 4.1.1 <bob@example.com>: Recipient address rejected: unverified address, try again later',
    ],
  ] as const)('%j → %s', (answers, action, cache, reply) => {
    const d = decideRecipientAnswers('bob@example.com', answers);
    expect(d.action).toBe(action);
    expect(d.cache).toBe(cache);
    expect(wire(d.reply)).toBe(reply);
  });

  test('a recipients domain must be an inbound domain', () => {
    const r = parseConfig({
      hostname: 'relay.example.com',
      inbound: { domains: { 'example.com': '[10.0.0.5]' } },
      recipients: { domains: { 'example.com': [{ callout: {} }], 'other.example': [{ file: '/x' }] } },
    });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path)).toEqual(['recipients.domains["other.example"]']);
  });

  test('a callout needs a bracketed smart host to ask: a route by MX lookup is named in the error', () => {
    const r = parseConfig({
      hostname: 'relay.example.com',
      inbound: { domains: { 'example.com': '[10.0.0.5]', 'example.org': 'mail.example.org' } },
      recipients: {
        domains: { 'example.com': [{ callout: {} }], 'example.org': [{ file: '/x' }, { callout: {} }] },
      },
    });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.errors.map((e) => e.path)).toEqual(['recipients.domains["example.org"][1].callout']);
      expect(r.errors[0]?.message).toContain('"mail.example.org", looked up by MX');
    }
    // The route is the one Moat would take: a domain's own entry before a wildcard over it.
    const exact = parseConfig({
      hostname: 'relay.example.com',
      inbound: { domains: { '*.example.com': 'mx.example.com', 'sub.example.com': '[10.0.0.9]' } },
      recipients: { domains: { 'sub.example.com': [{ callout: {} }] } },
    });
    expect(exact.ok).toBe(true);
    // And the most specific wildcard before a broader one, whatever their order in the file.
    const nested = parseConfig({
      hostname: 'relay.example.com',
      inbound: { domains: { '*.example.com': '[10.0.0.9]', '*.a.example.com': 'mx.a.example.com' } },
      recipients: { domains: { 'x.a.example.com': [{ callout: {} }] } },
    });
    expect(nested.ok).toBe(false);
    if (!nested.ok) expect(nested.errors[0]?.message).toContain('"mx.a.example.com", looked up by MX');
  });
});

describe('greylisting and rate limits', () => {
  const grey = (() => {
    const r = parseConfig({ hostname: 'relay.example.com', greylisting: { enabled: true } });
    if (!r.ok) throw new Error('config');
    return r.config.greylisting;
  })();

  test.each([
    ['192.0.2.77', '192.0.2.0/24'],
    ['::ffff:192.0.2.77', '192.0.2.0/24'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
  ])('the triplet of %s uses its network %s', (ip, network) => {
    expect(greylistTriplet(ip, 'Alice@Example.NET', 'Bob@example.com', grey)).toBe(
      `${network}|alice@example.net|bob@example.com`,
    );
  });

  test('the null sender is <> in the triplet', () => {
    expect(greylistTriplet('192.0.2.1', '', 'bob@example.com', grey)).toBe('192.0.2.0/24|<>|bob@example.com');
  });

  test.each([
    ['60/1m', { count: 60, perMs: 60_000 }],
    ['500/1h', { count: 500, perMs: 3_600_000 }],
    ['10 / 30s', { count: 10, perMs: 30_000 }],
    ['100/h', { count: 100, perMs: 3_600_000 }],
  ])('rate %j', (text, rate) => {
    expect(parseRate(text)).toEqual({ ok: true, value: rate });
  });

  test.each(['60', '0/1m', '60/0s', '60/500ms', 'x/1m', '60/1x'])('rate %j is refused', (text) => {
    expect(parseRate(text).ok).toBe(false);
  });

  test('over a limit: 421 at connect, 450 at MAIL/RCPT, the limit in the text, never 5xx', () => {
    expect(wire(rateLimited('client-connections', { count: 60, perMs: 60_000 }))).toBe(
      '421 4.7.0 Rate limit exceeded: 60/1m connections per client address, try again later',
    );
    expect(wire(rateLimited('user-recipients', { count: 2000, perMs: 3_600_000 }))).toBe(
      '450 4.7.1 Rate limit exceeded: 2000/1h recipients per authenticated user, try again later',
    );
  });

  test('limits config: rates parsed once, a bad one named', () => {
    const ok = parseConfig({
      hostname: 'relay.example.com',
      limits: { client: { connections: '60/1m' }, user: { recipients: '2000/1h' } },
    });
    expect(ok.ok && ok.config.limits.client).toEqual({
      connections: { count: 60, perMs: 60_000 },
      messages: null,
    });
    const bad = parseConfig({ hostname: 'relay.example.com', limits: { client: { messages: 'lots' } } });
    expect(!bad.ok && bad.errors[0]?.path).toBe('limits.client.messages');
  });
});
