import { compileRelayPolicy, parseConfig } from '@moat/policy';
import { type DnsServer, startDns } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { routeForSender } from './bounces.js';
import { findTargets } from './destinations.js';
import { DnsResolver, orderMx } from './dns-resolver.js';
import { routeFor } from './service.js';

let dns: DnsServer;
let resolver: DnsResolver;

beforeAll(async () => {
  dns = await startDns({
    'pref.test': {
      MX: [
        { preference: 20, exchange: 'b.pref.test' },
        { preference: 10, exchange: 'A.pref.test.' },
      ],
    },
    'a.pref.test': { A: ['127.0.0.20'] },
    'b.pref.test': { A: ['127.0.0.21'], AAAA: ['::1'] },
    'nullmx.test': { MX: [{ preference: 0, exchange: '.' }] },
    'implicit.test': { A: ['127.0.0.22'] },
    'nothing.test': { TXT: ['v=spf1 -all'] },
    'lost.test': { MX: [{ preference: 10, exchange: 'gone.lost.test' }] },
  });
  resolver = new DnsResolver({ servers: [dns.server], timeout: 200 });
});
afterAll(async () => {
  await dns.close();
});

describe('orderMx', () => {
  test('lowest preference first; equal preferences in random order; duplicates once', () => {
    const records = [
      { exchange: 'c', priority: 20 },
      { exchange: 'a', priority: 10 },
      { exchange: 'b', priority: 10 },
      { exchange: 'A.', priority: 30 },
    ];
    const orders = new Set<string>();
    for (let i = 0; i < 50; i++)
      orders.add(
        orderMx(records)
          .map((h) => h.exchange)
          .join(','),
      );
    expect(orders).toEqual(new Set(['a,b,c', 'b,a,c']));
  });
});

describe('DnsResolver and findTargets (real DNS on loopback)', () => {
  const mx = { id: 'mx', hops: [], tls: 'opportunistic' as const };

  test('MX targets in preference order, each host with its A then AAAA addresses, on mxPort', async () => {
    const r = await findTargets(resolver, mx, 'pref.test', 2525);
    expect(r).toEqual({
      ok: true,
      targets: [
        { address: '127.0.0.20', port: 2525, name: 'a.pref.test' },
        { address: '127.0.0.21', port: 2525, name: 'b.pref.test' },
        { address: '::1', port: 2525, name: 'b.pref.test' },
      ],
    });
  });

  test.each([
    ['nullmx.test', { ok: false, permanent: true, status: '5.1.10' }],
    ['nxdomain.test', { ok: false, permanent: true, status: '5.1.2' }],
    ['nothing.test', { ok: false, permanent: true, status: '5.1.2' }],
    ['lost.test', { ok: false, permanent: true, status: '5.4.4' }],
  ])('%s → %j', async (domain, expected) => {
    expect(await findTargets(resolver, mx, domain, 25)).toMatchObject(expected);
  });

  test('implicit MX: the domain itself', async () => {
    expect(await findTargets(resolver, mx, 'implicit.test', 25)).toMatchObject({
      ok: true,
      targets: [{ address: '127.0.0.22', name: 'implicit.test' }],
    });
  });

  test.each(['servfail', 'timeout'] as const)('%s is temporary, never a bounce', async (failure) => {
    dns.set('broken.test', 'A', ['127.0.0.23']);
    dns.fail('broken.test', failure);
    const r = await findTargets(resolver, mx, 'broken.test', 25);
    dns.fail('broken.test', null);
    expect(r).toMatchObject({ ok: false, permanent: false, status: '4.4.3' });
  });

  test('a smart host that does not resolve defers (a config matter), and brackets skip MX', async () => {
    const r = await findTargets(
      resolver,
      { id: 'x', hops: [{ host: 'nxdomain.test', port: 25, mx: true }], tls: 'opportunistic' },
      'example.com',
      25,
    );
    expect(r).toMatchObject({ ok: false, permanent: false });
    const bracketed = await findTargets(
      resolver,
      { id: 'y', hops: [{ host: 'implicit.test', port: 2525, mx: false }], tls: 'opportunistic' },
      'example.com',
      25,
    );
    expect(bracketed).toMatchObject({ ok: true, targets: [{ address: '127.0.0.22', port: 2525 }] });
    expect(dns.queries.filter((q) => q.name === 'implicit.test' && q.type === 'MX')).toHaveLength(1);
  });
});

describe('routes', () => {
  const r = parseConfig({
    hostname: 'relay.test',
    inbound: { domains: { 'example.com': '[127.0.0.1]:2525', '*.example.org': '[127.0.0.1]:2526' } },
  });
  if (!r.ok) throw new Error('config');
  const policy = compileRelayPolicy(r.config);

  test.each([
    ['alice@example.com', '[127.0.0.1]:2525'],
    ['bob@sub.example.org', '[127.0.0.1]:2526'],
    ['carol@elsewhere.test', 'mx'],
    ['"odd%hack"@example.com', '[127.0.0.1]:2525'],
  ])('a DSN to %s goes on route %s', (sender, routeId) => {
    expect(routeForSender(policy, sender)?.id).toBe(routeId);
  });

  test('no route for an address literal or an unparsable sender', () => {
    expect(routeForSender(policy, 'x@[127.0.0.1]')).toBeNull();
    expect(routeForSender(policy, 'not an address')).toBeNull();
  });

  test('a route id from Redis that the config no longer names is rebuilt from the id', () => {
    expect(routeFor(policy, r.config, '[127.0.0.9]:2600,[127.0.0.10]')).toMatchObject({
      hops: [
        { host: '127.0.0.9', port: 2600, mx: false },
        { host: '127.0.0.10', port: 25, mx: false },
      ],
      tls: 'opportunistic',
    });
    expect(routeFor(policy, r.config, 'mx').hops).toEqual([]);
  });
});
