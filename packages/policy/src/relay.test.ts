import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { configSchema, type MoatConfigInput } from './config-schema.js';
import {
  compileRelayPolicy,
  decideRecipient,
  groupByRoute,
  type RelayContext,
  routeConflicts,
  type Verdict,
} from './relay.js';
import { openRelayProbes, runRelayProbes, UNTRUSTED_PROBE_IP } from './relay-probes.js';

const base = {
  hostname: 'relay.example.com',
  inbound: {
    domains: {
      'example.com': '[192.168.1.254]',
      'Example.ORG': '[192.168.1.254]:2525',
      'bücher.example': '[192.168.1.254]',
      '*.example.net': '[10.0.0.7]',
      'special.example.net': '[10.0.0.8]',
      '*.deep.example.net': '[10.0.0.9]',
    },
  },
  outbound: { clients: ['192.168.1.254/32', '2001:db8:1::/48'], authenticated: true },
} satisfies MoatConfigInput;

const policyOf = (input: MoatConfigInput) => compileRelayPolicy(configSchema.parse(input));
const policy = policyOf(base);
const noAuthPolicy = policyOf({ ...base, outbound: { ...base.outbound, authenticated: false } });

const untrusted: RelayContext = { clientIp: '192.0.2.1', user: null };
const TRUSTED: [string, RelayContext][] = [
  ['a client in an IPv4 network', { clientIp: '192.168.1.254', user: null }],
  ['an IPv4-mapped IPv6 client', { clientIp: '::ffff:192.168.1.254', user: null }],
  ['a client in an IPv6 network', { clientIp: '2001:db8:1::25', user: null }],
  ['an authenticated user', { clientIp: '192.0.2.1', user: 'alice' }],
];

/** A verdict in one line: "accept inbound [192.168.1.254] user@example.com" or "reject 550 5.7.1 relay-denied". */
function summary(v: Verdict): string {
  return v.action === 'accept'
    ? `accept ${v.direction} ${v.route.id} ${v.recipient.address}`
    : `reject ${v.reply.code} ${v.reply.enhanced} ${v.reason}`;
}

const RELAY_DENIED = (reason: string) => `reject 550 5.7.1 ${reason}`;

test('without an exact inbound domain, a domainless postmaster has nowhere to go', () => {
  const p = policyOf({
    hostname: 'relay.example.com',
    inbound: { domains: { '*.example.com': '[10.0.0.5]' } },
  });
  expect(p.postmaster).toBeNull();
  expect(summary(decideRecipient(p, untrusted, 'postmaster'))).toBe('reject 553 5.1.3 syntax');
});

describe('an untrusted client', () => {
  test.each([
    // Our domains, plain: accepted inbound from anyone.
    ['user@example.com', 'accept inbound [192.168.1.254] user@example.com'],
    ['<User@EXAMPLE.COM>', 'accept inbound [192.168.1.254] User@example.com'],
    ['postmaster@example.org', 'accept inbound [192.168.1.254]:2525 postmaster@example.org'],
    // RFC 5321 §4.1.1.3: the domainless postmaster must be accepted; it is our first domain's.
    ['<Postmaster>', 'accept inbound [192.168.1.254] postmaster@example.com'],
    ['postmaster', 'accept inbound [192.168.1.254] postmaster@example.com'],
    ['"john doe"@example.com', 'accept inbound [192.168.1.254] "john doe"@example.com'],
    ['user@xn--bcher-kva.example', 'accept inbound [192.168.1.254] user@xn--bcher-kva.example'],
    ['user@BÜCHER.example', 'accept inbound [192.168.1.254] user@xn--bcher-kva.example'],
    ['user@bücher.example', 'accept inbound [192.168.1.254] user@xn--bcher-kva.example'],
    // Wildcards: strict subdomains only; an exact entry beats a wildcard, a longer wildcard a shorter.
    ['user@a.example.net', 'accept inbound [10.0.0.7] user@a.example.net'],
    ['user@A.B.Example.NET', 'accept inbound [10.0.0.7] user@a.b.example.net'],
    ['user@special.example.net', 'accept inbound [10.0.0.8] user@special.example.net'],
    ['user@x.special.example.net', 'accept inbound [10.0.0.7] user@x.special.example.net'],
    ['user@x.deep.example.net', 'accept inbound [10.0.0.9] user@x.deep.example.net'],
    ['user@deep.example.net', 'accept inbound [10.0.0.7] user@deep.example.net'],
    ['user@example.net', RELAY_DENIED('relay-denied')],
    ['user@badexample.net', RELAY_DENIED('relay-denied')],
    ['user@aexample.com', RELAY_DENIED('relay-denied')],
    ['user@sub.example.com', RELAY_DENIED('relay-denied')],
    ['user@example.com.foreign.example', RELAY_DENIED('relay-denied')],
    // Foreign domains.
    ['user@foreign.example', RELAY_DENIED('relay-denied')],
    ['USER@FOREIGN.EXAMPLE', RELAY_DENIED('relay-denied')],
    ['user@bücher.foreign.example', RELAY_DENIED('relay-denied')],
    // Every trick, even when the domain after the last "@" is ours.
    ['user%foreign.example@example.com', RELAY_DENIED('trick:percent-hack')],
    ['USER%FOREIGN.EXAMPLE@EXAMPLE.COM', RELAY_DENIED('trick:percent-hack')],
    ['user%foreign.example@bücher.example', RELAY_DENIED('trick:percent-hack')],
    ['"user%foreign.example"@example.com', RELAY_DENIED('trick:percent-hack')],
    ['foreign.example!user@example.com', RELAY_DENIED('trick:bang-path')],
    ['"user@foreign.example"@example.com', RELAY_DENIED('trick:quoted-at')],
    ['@example.com:user@foreign.example', RELAY_DENIED('trick:source-route')],
    ['<@foreign.example:user@example.com>', RELAY_DENIED('trick:source-route')],
    ['<@example.com,@example.org:user@example.com>', RELAY_DENIED('trick:source-route')],
    ['user@foreign.example@example.com', RELAY_DENIED('trick:multiple-at')],
    ['user\\@foreign.example@example.com', RELAY_DENIED('trick:multiple-at')],
    ['user@[127.0.0.1]', RELAY_DENIED('trick:address-literal')],
    ['postmaster@[192.168.1.254]', RELAY_DENIED('trick:address-literal')],
    ['user@[IPv6:::1]', RELAY_DENIED('trick:address-literal')],
    ['user@127.0.0.1', RELAY_DENIED('trick:address-literal')],
    ['user@example.com.', RELAY_DENIED('trick:trailing-dot')],
    ['user@a.example.net.', RELAY_DENIED('trick:trailing-dot')],
    ['user@foreign.example.', RELAY_DENIED('trick:trailing-dot')],
    // Plain syntax errors.
    ['user@localhost', 'reject 553 5.1.3 syntax'],
    ['us er@example.com', 'reject 553 5.1.3 syntax'],
    ['.user@example.com', 'reject 553 5.1.3 syntax'],
    ['user\r\n@example.com', 'reject 553 5.1.3 syntax'],
    ['<>', 'reject 553 5.1.3 syntax'],
  ])('%s → %s', (recipient, expected) => {
    expect(summary(decideRecipient(policy, untrusted, recipient))).toBe(expected);
  });

  test('an authenticated user is untrusted when outbound.authenticated is false', () => {
    const alice = { clientIp: '192.0.2.1', user: 'alice' };
    expect(summary(decideRecipient(noAuthPolicy, alice, 'user@foreign.example'))).toBe(
      RELAY_DENIED('relay-denied'),
    );
    expect(summary(decideRecipient(noAuthPolicy, alice, 'user%foreign.example@example.com'))).toBe(
      RELAY_DENIED('trick:percent-hack'),
    );
    expect(summary(decideRecipient(noAuthPolicy, alice, 'user@example.com'))).toBe(
      'accept inbound [192.168.1.254] user@example.com',
    );
  });

  test('a rejected syntax error carries the parser message for the log', () => {
    expect(decideRecipient(policy, untrusted, 'us..er@example.com')).toMatchObject({
      action: 'reject',
      detail: expect.stringContaining('..'),
    });
  });
});

describe.each(TRUSTED)('%s', (_name, ctx) => {
  test.each([
    ['user@example.com', 'accept inbound [192.168.1.254] user@example.com'],
    ['user@foreign.example', 'accept outbound mx user@foreign.example'],
    ['User@Bücher.Foreign.Example', 'accept outbound mx User@xn--bcher-kva.foreign.example'],
    // Well-formed tricks are mailboxes at the domain after the real "@".
    ['user%other.example@foreign.example', 'accept outbound mx user%other.example@foreign.example'],
    ['other.example!user@foreign.example', 'accept outbound mx other.example!user@foreign.example'],
    ['"user@other.example"@foreign.example', 'accept outbound mx "user@other.example"@foreign.example'],
    ['user@foreign.example.', 'accept outbound mx user@foreign.example'],
    ['@relay.example:user@foreign.example', 'accept outbound mx user@foreign.example'],
    // ...and when that domain is ours, they go by its route, but never as "inbound".
    ['user%other.example@example.com', 'accept outbound [192.168.1.254] user%other.example@example.com'],
    ['@foreign.example:user@example.org', 'accept outbound [192.168.1.254]:2525 user@example.org'],
    // Never a literal; a malformed address is a syntax error for a trusted client.
    ['user@[192.0.2.1]', RELAY_DENIED('trick:address-literal')],
    ['user@[IPv6:2001:db8::1]', RELAY_DENIED('trick:address-literal')],
    ['user@192.0.2.1', RELAY_DENIED('trick:address-literal')],
    ['user@other.example@foreign.example', 'reject 553 5.1.3 trick:multiple-at'],
    ['user..x@foreign.example', 'reject 553 5.1.3 syntax'],
  ])('%s → %s', (recipient, expected) => {
    expect(summary(decideRecipient(policy, ctx, recipient))).toBe(expected);
  });
});

describe('compileRelayPolicy', () => {
  test('inbound domains that send to the same hosts share one route', () => {
    const a = decideRecipient(policy, untrusted, 'a@example.com');
    const b = decideRecipient(policy, untrusted, 'b@bücher.example');
    if (a.action !== 'accept' || b.action !== 'accept') throw new Error('expected both accepted');
    expect(a.route).toBe(b.route);
    expect([...policy.routes.keys()].sort()).toEqual(
      ['[10.0.0.7]', '[10.0.0.8]', '[10.0.0.9]', '[192.168.1.254]', '[192.168.1.254]:2525', 'mx'].sort(),
    );
  });

  test('without a smart host, outbound is the MX route with delivery.tls', () => {
    const p = policyOf({ ...base, delivery: { tls: 'required' } });
    expect(p.outbound).toEqual({ id: 'mx', hops: [], tls: 'required' });
  });

  test('with a smart host, outbound goes through it', () => {
    const p = policyOf({
      ...base,
      outbound: {
        ...base.outbound,
        smarthost: { hosts: '[smtp.isp.example]:587', tls: 'required', auth: { user: 'u', pass: 'p' } },
      },
    });
    expect(p.outbound).toMatchObject({ id: '[smtp.isp.example]:587', tls: 'required', auth: { user: 'u' } });
    expect(p.routes.has('mx')).toBe(false);
    const v = decideRecipient(p, { clientIp: '192.168.1.254', user: null }, 'user@foreign.example');
    expect(summary(v)).toBe('accept outbound [smtp.isp.example]:587 user@foreign.example');
  });

  test('the same hosts with different tls settings are a conflict', () => {
    const input = {
      hostname: 'relay.example.com',
      inbound: {
        domains: {
          'example.com': '[192.168.1.254]',
          'example.org': { hosts: '[192.168.1.254]', tls: 'none' as const },
        },
      },
    };
    // The schema refuses such a config (through routeConflicts), so no policy is ever compiled from it.
    const parsed = configSchema.safeParse(input);
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues).toEqual([
      expect.objectContaining({
        path: ['inbound', 'domains', 'example.org'],
        message: expect.stringContaining('[192.168.1.254]'),
      }),
    ]);
    expect(routeConflicts(configSchema.parse(base))).toEqual([]);
  });
});

describe('groupByRoute', () => {
  test('a mixed transaction from an untrusted client: only the local recipient is accepted', () => {
    const verdicts = ['user@example.com', 'user@foreign.example'].map((r) =>
      decideRecipient(policy, untrusted, r),
    );
    expect(verdicts.map((v) => v.action)).toEqual(['accept', 'reject']);
    const groups = groupByRoute(verdicts);
    expect([...groups.keys()]).toEqual(['[192.168.1.254]']);
    expect(groups.get('[192.168.1.254]')?.recipients).toEqual(['user@example.com']);
  });

  test('groups by route in order, dropping exact duplicates of the canonical address', () => {
    const trusted = { clientIp: '192.168.1.254', user: null };
    const verdicts = [
      'b@example.com',
      'x@foreign.example',
      'a@example.org',
      '<b@EXAMPLE.com>',
      'B@example.com',
      'c@bücher.example',
      'x@foreign.example',
      'user@[192.0.2.1]',
    ].map((r) => decideRecipient(policy, trusted, r));
    expect([...groupByRoute(verdicts)].map(([id, g]) => [id, g.route.id, g.recipients.join(' ')])).toEqual([
      ['[192.168.1.254]', '[192.168.1.254]', 'b@example.com B@example.com c@xn--bcher-kva.example'],
      ['mx', 'mx', 'x@foreign.example'],
      ['[192.168.1.254]:2525', '[192.168.1.254]:2525', 'a@example.org'],
    ]);
  });
});

describe('openRelayProbes', () => {
  test('every probe passes against the sample config', () => {
    const results = runRelayProbes(policy);
    expect(results.filter((r) => !r.passed).map((r) => `${r.probe.name}: ${summary(r.verdict)}`)).toEqual([]);
    expect(results.length).toBeGreaterThan(100);
  });

  test('probes come from an untrusted client, cover every trick, and accept postmaster at each domain', () => {
    const probes = openRelayProbes(policy);
    expect(new Set(probes.map((p) => p.clientIp))).toEqual(new Set([UNTRUSTED_PROBE_IP]));
    expect(probes.every((p) => p.user === null)).toBe(true);
    const reasons = new Set(
      runRelayProbes(policy, probes).flatMap((r) =>
        r.verdict.action === 'reject' ? [r.verdict.reason] : [],
      ),
    );
    for (const reason of [
      'relay-denied',
      'trick:percent-hack',
      'trick:bang-path',
      'trick:quoted-at',
      'trick:source-route',
      'trick:multiple-at',
      'trick:address-literal',
      'trick:trailing-dot',
    ]) {
      expect(reasons).toContain(reason);
    }
    const accepted = probes.filter((p) => p.expect === 'accept').map((p) => p.recipient);
    expect(accepted).toEqual(
      expect.arrayContaining([
        'postmaster@example.com',
        'postmaster@example.org',
        'postmaster@xn--bcher-kva.example',
        'postmaster@bücher.example',
        'postmaster@relay-probe.example.net',
        'postmaster@special.example.net',
      ]),
    );
    expect(probes.map((p) => p.recipient)).toEqual(
      expect.arrayContaining([
        'user@example.net',
        'user@relay-test.invalid',
        'user%relay-test.invalid@EXAMPLE.COM',
      ]),
    );
  });

  test('they catch an open relay', () => {
    const open = policyOf({ ...base, outbound: { clients: ['0.0.0.0/0'] } });
    const failed = runRelayProbes(open).filter((r) => !r.passed);
    expect(failed.map((r) => r.probe.recipient)).toContain('user@relay-test.invalid');
  });

  test('the foreign domain is one the config does not claim', () => {
    const probes = openRelayProbes(
      policyOf({ ...base, inbound: { domains: { '*.invalid': '[10.0.0.1]' } } }),
    );
    expect(probes.map((p) => p.recipient)).toContain('user@relay-test.test');
    expect(runRelayProbes(policyOf({ hostname: 'relay.example.com' })).every((r) => r.passed)).toBe(true);
  });
});

describe('properties', () => {
  const ours = ['example.com', 'example.org', 'bücher.example', 'a.example.net', 'special.example.net'];
  const local = fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,10}[a-z0-9]$/).filter((l) => !l.includes('..'));
  const foreign = fc
    .tuple(
      fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/),
      fc.constantFrom('com', 'org', 'de', 'example'),
    )
    .map(([l, t]) => `${l}.${t}`)
    .filter((d) => !ours.includes(d) && !d.endsWith('.example.net'));
  const domain = fc.oneof(foreign, fc.constantFrom(...ours));
  const ip = fc.oneof(
    fc.ipV4().map((a) => `[${a}]`),
    fc.ipV6().map((a) => `[IPv6:${a}]`),
  );
  const tricky = fc.oneof(
    fc.tuple(local, foreign, domain).map(([l, f, d]) => `${l}%${f}@${d}`),
    fc.tuple(local, foreign, domain).map(([l, f, d]) => `${f}!${l}@${d}`),
    fc.tuple(local, foreign, domain).map(([l, f, d]) => `"${l}@${f}"@${d}`),
    fc.tuple(local, domain, domain).map(([l, r, d]) => `@${r}:${l}@${d}`),
    fc.tuple(local, foreign, domain).map(([l, f, d]) => `${l}@${f}@${d}`),
    fc.tuple(local, domain).map(([l, d]) => `${l}@${d}.`),
    fc.tuple(local, ip).map(([l, i]) => `${l}@${i}`),
    fc.tuple(local, fc.ipV4()).map(([l, i]) => `${l}@${i}`),
  );

  test('any address with a trick from an untrusted client is rejected', () => {
    fc.assert(
      fc.property(tricky, fc.boolean(), (recipient, upper) => {
        const v = decideRecipient(policy, untrusted, upper ? recipient.toUpperCase() : recipient);
        expect(v.action).toBe('reject');
        if (v.action === 'reject') expect([550, 553]).toContain(v.reply.code);
      }),
      { numRuns: 1000 },
    );
  });

  test('any plain address at a foreign domain from an untrusted client is refused relay', () => {
    fc.assert(
      fc.property(local, foreign, (l, f) => {
        expect(summary(decideRecipient(policy, untrusted, `${l}@${f}`))).toBe(RELAY_DENIED('relay-denied'));
      }),
    );
  });

  test('decideRecipient never throws and never accepts inbound an address that is not ours', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.constantFrom('192.0.2.1', '::ffff:192.0.2.1', 'garbage'),
        (recipient, ip) => {
          const v = decideRecipient(policy, { clientIp: ip, user: null }, recipient);
          if (v.action === 'accept') {
            expect(v.direction).toBe('inbound');
            expect(v.recipient.tricks).toEqual([]);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
