import { promises as nodeDns } from 'node:dns';
import { afterEach, describe, expect, it } from 'vitest';
import { type DnsServer, type DnsZone, startDns } from './dns.js';

describe('startDns', () => {
  const servers: DnsServer[] = [];
  /** A Node resolver that asks only the test server. */
  const start = async (zone?: DnsZone) => {
    const dns = await startDns(zone);
    servers.push(dns);
    const resolver = new nodeDns.Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([dns.server]);
    return { dns, resolver };
  };
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  it('answers MX, A, AAAA, TXT and PTR', async () => {
    const { dns, resolver } = await start({
      'Example.COM.': {
        MX: [
          { preference: 20, exchange: 'mx2.example.com' },
          { preference: 10, exchange: 'mx1.example.com.' },
        ],
        TXT: ['v=spf1 -all'],
      },
      'mx1.example.com': { A: ['192.0.2.10', '192.0.2.11'], AAAA: ['2001:db8::10'] },
      '10.2.0.192.in-addr.arpa': { PTR: ['mx1.example.com'] },
    });
    expect(dns.server).toBe(`127.0.0.1:${dns.port}`);

    // Node 24 adds type: 'MX' to each record; what a resolver must carry is priority and exchange.
    const mx = (await resolver.resolveMx('example.com')).map(({ priority, exchange }) => ({
      priority,
      exchange,
    }));
    expect(mx.sort((a, b) => a.priority - b.priority)).toEqual([
      { priority: 10, exchange: 'mx1.example.com' },
      { priority: 20, exchange: 'mx2.example.com' },
    ]);
    expect((await resolver.resolve4('MX1.example.com')).sort()).toEqual(['192.0.2.10', '192.0.2.11']);
    expect(await resolver.resolve6('mx1.example.com')).toEqual(['2001:db8::10']);
    expect(await resolver.resolveTxt('example.com')).toEqual([['v=spf1 -all']]);
    expect(await resolver.reverse('192.0.2.10')).toEqual(['mx1.example.com']);
    expect(dns.queries).toContainEqual({ name: 'mx1.example.com', type: 'A' });
    expect(dns.queries).toContainEqual({ name: 'example.com', type: 'MX' });
  });

  it('answers NXDOMAIN for an unknown name (ENOTFOUND)', async () => {
    const { resolver } = await start({ 'example.com': { A: ['192.0.2.1'] } });
    await expect(resolver.resolveMx('unknown.example.com')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('answers NOERROR without data for a known name lacking the type (ENODATA)', async () => {
    const { resolver } = await start({ 'example.com': { A: ['192.0.2.1'] } });
    await expect(resolver.resolveMx('example.com')).rejects.toMatchObject({ code: 'ENODATA' });
    await expect(resolver.resolve6('example.com')).rejects.toMatchObject({ code: 'ENODATA' });
  });

  it.each(['.', ''])('encodes a null MX with exchange %j as the root name', async (exchange) => {
    const { resolver } = await start({ 'nomail.example': { MX: [{ preference: 0, exchange }] } });
    const mx = await resolver.resolveMx('nomail.example');
    expect(mx.map(({ priority, exchange }) => ({ priority, exchange }))).toEqual([
      { priority: 0, exchange: '' },
    ]);
  });

  it('set and remove change the answers of the next query', async () => {
    const { dns, resolver } = await start();
    await expect(resolver.resolve4('late.example')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    dns.set('LATE.example.', 'A', ['192.0.2.7']);
    expect(await resolver.resolve4('late.example')).toEqual(['192.0.2.7']);
    dns.remove('late.example', 'A');
    await expect(resolver.resolve4('late.example')).rejects.toMatchObject({ code: 'ENODATA' });
    dns.remove('late.example');
    await expect(resolver.resolve4('late.example')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('fails a name with SERVFAIL or no answer at all, until healed', async () => {
    const dns = await startDns({ 'broken.example': { A: ['192.0.2.1'] } });
    servers.push(dns);
    const resolver = new nodeDns.Resolver({ timeout: 200, tries: 1 });
    resolver.setServers([dns.server]);
    dns.fail('Broken.example.', 'servfail');
    await expect(resolver.resolve4('broken.example')).rejects.toMatchObject({ code: 'ESERVFAIL' });
    dns.fail('broken.example', 'timeout');
    await expect(resolver.resolve4('broken.example')).rejects.toMatchObject({ code: 'ETIMEOUT' });
    dns.fail('broken.example', null);
    expect(await resolver.resolve4('broken.example')).toEqual(['192.0.2.1']);
  });

  it('answers with the TTL set for a name, and after the delay set for it', async () => {
    const { dns, resolver } = await start({
      'slow.example': { A: ['192.0.2.1'] },
      'fast.example': { A: ['192.0.2.2'] },
    });
    dns.ttl('slow.example', 300);
    dns.delay('Slow.example.', 400);
    const started = performance.now();
    const [slow, fast] = await Promise.all([
      resolver.resolve4('slow.example', { ttl: true }).then((r) => ({ r, ms: performance.now() - started })),
      resolver.resolve4('fast.example', { ttl: true }).then((r) => ({ r, ms: performance.now() - started })),
    ]);
    expect(slow.r).toEqual([{ address: '192.0.2.1', ttl: 300 }]);
    expect(fast.r).toEqual([{ address: '192.0.2.2', ttl: 0 }]);
    expect(slow.ms).toBeGreaterThanOrEqual(350);
    expect(fast.ms).toBeLessThan(300);
    dns.ttl('slow.example', null);
    dns.delay('slow.example', null);
    expect(await resolver.resolve4('slow.example', { ttl: true })).toEqual([
      { address: '192.0.2.1', ttl: 0 },
    ]);
  });

  it('truncates a large UDP answer so the resolver retries over TCP', async () => {
    const key = `v=DKIM1; k=rsa; p=${'A'.repeat(3000)}`;
    const { resolver } = await start({ 'sel._domainkey.example.com': { TXT: [key] } });
    const [record] = await resolver.resolveTxt('sel._domainkey.example.com');
    expect(record?.join('')).toBe(key);
    expect(record?.every((part) => Buffer.byteLength(part) <= 255)).toBe(true);
  });
});
