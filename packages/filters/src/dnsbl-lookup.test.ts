/**
 * DNS list lookups against the testkit's authoritative DNS server on loopback: what is kept
 * and for how long (counted in the questions the server received), that every zone is asked
 * at once, and that a zone which does not answer in time is skipped, never counted as listed.
 */
import { type DnsblConfig, dnsblQueryName, parseConfig } from '@moat/policy';
import { type DnsServer, startDns } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DnsblChecker } from './dnsbl-lookup.js';

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDns();
});
afterAll(async () => {
  await dns?.close();
});

function dnsblConfig(block: Record<string, unknown>): DnsblConfig {
  const r = parseConfig({ hostname: 'relay.example.com', dnsbl: block });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.config.dnsbl;
}

/** Publishes `ip` as listed (127.0.0.2) in `zone`; returns the name asked. */
function list(ip: string, zone: string): string {
  const name = dnsblQueryName(ip, zone);
  if (name === null) throw new Error(`not an address: ${ip}`);
  dns.set(name, 'A', ['127.0.0.2']);
  return name;
}

/** How many questions about `name` the server received. */
const asked = (name: string) => dns.queries.filter((q) => q.name === name).length;
const zones = (sites: readonly { zone: string }[]) => sites.map((s) => s.zone).sort();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('DnsblChecker', () => {
  test('a listing is kept for its DNS TTL: a second check within it asks the server nothing', async () => {
    const name = list('192.0.2.10', 'ttl.test');
    dns.ttl(name, 2);
    const checker = new DnsblChecker(dnsblConfig({ sites: ['ttl.test'], negativeCache: '0s' }), [dns.server]);

    expect((await checker.check('192.0.2.10')).listed).toBe(true);
    expect(asked(name)).toBe(1);
    // Past the 1 s floor a TTL of 0 would get, still within the record's 2 s.
    await sleep(1200);
    const again = await checker.check('192.0.2.10');
    expect(again.listed).toBe(true);
    expect(zones(again.score.listedBy)).toEqual(['ttl.test']);
    expect(asked(name)).toBe(1);
    // Once the TTL is over, the server is asked again.
    await sleep(1000);
    expect((await checker.check('192.0.2.10')).listed).toBe(true);
    expect(asked(name)).toBe(2);
  });

  test('every zone is asked at once: the check takes the slowest zone, not the sum', async () => {
    const slow = ['slow1.test', 'slow2.test', 'slow3.test'].map((zone) => list('192.0.2.20', zone));
    list('192.0.2.20', 'fast.test');
    for (const name of slow) dns.delay(name, 800);
    const checker = new DnsblChecker(
      dnsblConfig({
        sites: ['slow1.test', 'slow2.test', 'slow3.test', 'fast.test'],
        threshold: 4,
        timeout: '5s',
      }),
      [dns.server],
    );
    const started = performance.now();
    const result = await checker.check('192.0.2.20');
    const elapsed = performance.now() - started;
    // Every slow zone answered (they are counted), so the check did wait for them...
    expect(zones(result.score.listedBy)).toEqual(['fast.test', 'slow1.test', 'slow2.test', 'slow3.test']);
    expect(result.score.unanswered).toEqual([]);
    expect(result.listed).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(750);
    // ...but at the same time: one after the other would take 2,400 ms (the slack is for a
    // loaded CI machine).
    expect(elapsed).toBeLessThan(1800);
    expect(result.ms).toBeLessThan(1800);
  });

  test('a zone that does not answer by the timeout is skipped (unanswered), not listed, and asked again next time', async () => {
    const dead = list('192.0.2.30', 'dead.test');
    const late = list('192.0.2.30', 'late.test');
    dns.fail(dead, 'timeout');
    dns.delay(late, 1500);
    const checker = new DnsblChecker(
      dnsblConfig({ sites: ['dead.test', 'late.test', 'clean.test'], threshold: 1, timeout: '300ms' }),
      [dns.server],
    );
    const started = performance.now();
    const result = await checker.check('192.0.2.30');
    const elapsed = performance.now() - started;
    expect(result.listed).toBe(false);
    expect(result.score.score).toBe(0);
    expect(result.score.listedBy).toEqual([]);
    // What apps/moat counts as moat_dnsbl_checks_total{result="skipped"}: not listed, some unanswered.
    expect(zones(result.score.unanswered)).toEqual(['dead.test', 'late.test']);
    // Given up at the timeout, not after the late zone's 1.5 s.
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(1400);
    // No answer is not an answer: nothing was kept, both are asked again.
    const before = [asked(dead), asked(late)];
    expect(zones((await checker.check('192.0.2.30')).score.unanswered)).toEqual(['dead.test', 'late.test']);
    expect([asked(dead), asked(late)]).toEqual([(before[0] ?? 0) + 1, (before[1] ?? 0) + 1]);
  });

  test('listed by one zone while another does not answer: refused, and the skipped zone still reported', async () => {
    list('192.0.2.40', 'bl.test');
    dns.fail(list('192.0.2.40', 'gone.test'), 'timeout');
    const checker = new DnsblChecker(
      dnsblConfig({ sites: ['bl.test*3', 'gone.test*3'], threshold: 3, timeout: '300ms' }),
      [dns.server],
    );
    const result = await checker.check('192.0.2.40');
    expect(result.listed).toBe(true);
    expect(result.score.score).toBe(3);
    expect(zones(result.score.listedBy)).toEqual(['bl.test']);
    expect(zones(result.score.unanswered)).toEqual(['gone.test']);
  });
});
