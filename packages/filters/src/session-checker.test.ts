/**
 * The session checks as the edge asks them, with real Redis counters and a real DNS server:
 * who is exempt from what, per-user and per-sender-domain limits, and which phase refuses.
 */
import { parseConfig } from '@moat/policy';
import { connect, Greylist, keysFor, RateLimits, type RedisClient, whenReady } from '@moat/spool';
import { type DnsServer, type RedisServer, startDns, startRedis } from '@moat/testkit';

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DnsblChecker } from './dnsbl-lookup.js';
import { hasSessionChecks, sessionChecker } from './session-checker.js';

let server: RedisServer;
let redis: RedisClient;
let dns: DnsServer;
beforeAll(async () => {
  [server, dns] = await Promise.all([startRedis(), startDns({ '66.2.0.192.bl.test': { A: ['127.0.0.2'] } })]);
  redis = connect({ url: server.url }, 'producer');
  await whenReady(redis);
});
afterAll(async () => {
  redis?.disconnect();
  await Promise.all([server?.stop(), dns?.close()]);
});

let prefix = 0;
function checker(block: Record<string, unknown>) {
  const r = parseConfig({ hostname: 'relay.example.com', outbound: { clients: ['10.0.0.0/8'] }, ...block });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const keys = keysFor(`sc${++prefix}`);
  const dnsbl = r.config.dnsbl.sites.length > 0 ? new DnsblChecker(r.config.dnsbl, [dns.server]) : null;
  return {
    config: r.config,
    checker: sessionChecker({
      config: r.config,
      dnsbl,
      limits: new RateLimits(redis, keys),
      greylist: new Greylist(redis, keys),
      recipients: null,
    }),
  };
}
const reasons = (refusals: ({ reason: string } | null)[]) => refusals.map((r) => r?.reason ?? 'ok');

describe('sessionChecker', () => {
  test('nothing configured: no checks at all', () => {
    expect(hasSessionChecks(checker({}).config)).toBe(false);
    expect(hasSessionChecks(checker({ limits: { user: { messages: '5/1h' } } }).config)).toBe(true);
  });

  test('recipients per authenticated user count every RCPT; an exempt user is never counted', async () => {
    const { checker: c } = checker({
      limits: { user: { recipients: '3/1h', messages: '2/1h' }, exempt: { users: ['boss'] } },
    });
    const s = c.open({ id: 's1', clientIp: '198.51.100.1', allowListed: false });
    const alice = { user: 'alice', sender: 'alice@example.com', trusted: true };
    const out = [];
    for (let i = 0; i < 4; i++)
      out.push(await s.rcpt(alice, { address: `r${i}@remote.example`, direction: 'outbound' }));
    expect(reasons(out)).toEqual(['ok', 'ok', 'ok', 'rate:user-recipients']);
    expect(out[3]?.reply).toMatchObject({ code: 450, enhanced: '4.7.1' });
    expect(reasons([await s.mail(alice), await s.mail(alice), await s.mail(alice)])).toEqual([
      'ok',
      'ok',
      'rate:user-messages',
    ]);
    const boss = { user: 'boss', sender: 'boss@example.com', trusted: true };
    for (let i = 0; i < 5; i++)
      expect(await s.rcpt(boss, { address: 'x@remote.example', direction: 'outbound' })).toBeNull();
  });

  test('messages per sender domain count outbound mail only', async () => {
    const { checker: c } = checker({ limits: { senderDomain: { messages: '2/1h' } } });
    const inside = c.open({ id: 's2', clientIp: '10.1.1.1', allowListed: true });
    const outside = c.open({ id: 's3', clientIp: '198.51.100.1', allowListed: false });
    const out = { user: null, sender: 'news@Example.COM', trusted: true };
    const inbound = { user: null, sender: 'news@example.com', trusted: false };
    expect(
      reasons([await inside.mail(out), await inside.mail({ ...out, sender: 'ceo@example.com' })]),
    ).toEqual(['ok', 'ok']);
    expect((await inside.mail(out))?.reason).toBe('rate:sender-domain-messages');
    // The same domain in mail from the Internet is not counted, nor is the null sender.
    expect(await outside.mail(inbound)).toBeNull();
    expect(await inside.mail({ ...out, sender: '' })).toBeNull();
  });

  test('a listed client is refused at RCPT (not at connect), unless it authenticated', async () => {
    const { checker: c } = checker({ dnsbl: { sites: ['bl.test*2'], threshold: 2 } });
    const s = c.open({ id: 's4', clientIp: '192.0.2.66', allowListed: false });
    expect(await s.connect()).toBeNull();
    const refused = await s.rcpt(
      { user: null, sender: 'a@b.example', trusted: false },
      { address: 'x@example.com', direction: 'inbound' },
    );
    expect(refused).toMatchObject({ reason: 'dnsbl', detail: 'bl.test', reply: { code: 554 } });
    expect(
      await s.rcpt(
        { user: 'alice', sender: 'a@b.example', trusted: true },
        { address: 'x@remote.example', direction: 'outbound' },
      ),
    ).toBeNull();
  });

  test('dnsbl.rejectAt: connect refuses before the greeting; an allow-listed network is not even looked up', async () => {
    const { checker: c } = checker({ dnsbl: { sites: ['bl.test'], rejectAt: 'connect' } });
    expect((await c.open({ id: 's5', clientIp: '192.0.2.66', allowListed: false }).connect())?.reason).toBe(
      'dnsbl',
    );
    const before = dns.queries.length;
    expect(await c.open({ id: 's6', clientIp: '10.0.0.66', allowListed: true }).connect()).toBeNull();
    expect(dns.queries.length).toBe(before);
  });

  test('a Redis failure is thrown (the edge answers 451), not a pass', async () => {
    const dead = connect({ url: 'redis://127.0.0.1:1', commandTimeout: 300 }, 'producer');
    try {
      const r = parseConfig({ hostname: 'relay.example.com', limits: { client: { messages: '5/1m' } } });
      if (!r.ok) throw new Error('config');
      const c = sessionChecker({
        config: r.config,
        dnsbl: null,
        limits: new RateLimits(dead, keysFor('dead')),
        greylist: new Greylist(dead, keysFor('dead')),
        recipients: null,
      });
      await expect(
        c
          .open({ id: 's7', clientIp: '198.51.100.7', allowListed: false })
          .mail({ user: null, sender: '', trusted: false }),
      ).rejects.toThrow();
    } finally {
      dead.disconnect();
    }
  });
});
