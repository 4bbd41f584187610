/**
 * SPF, DKIM, DMARC and ARC with mailauth against the testkit's DNS server on loopback, which
 * publishes the records; the keys are made by the test. A pass, a fail and a temperror for
 * each, and what the policy core decides from them.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decideAuthentication, parseConfig } from '@moat/policy';
import { type DnsServer, startDns } from '@moat/testkit';
import { authenticate, sealMessage } from 'mailauth';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { authenticateSender, lookupThrough } from './authentication.js';
import { DkimSigner } from './dkim-signer.js';

const MTA = 'relay.example.com';
let dns: DnsServer;
let dir: string;
let signer: DkimSigner;
let listSigner: DkimSigner;
let listKey: string;

function rsaKey(): { pem: string; dns: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const der = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    dns: `v=DKIM1; k=rsa; p=${der}`,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'moat-auth-'));
  const bank = rsaKey();
  const list = rsaKey();
  writeFileSync(join(dir, 'bank.pem'), bank.pem);
  writeFileSync(join(dir, 'list.pem'), list.pem);
  listKey = list.pem;
  dns = await startDns({
    'bank.example': { TXT: ['v=spf1 ip4:192.0.2.10 -all'], A: ['192.0.2.10'] },
    's1._domainkey.bank.example': { TXT: [bank.dns] },
    '_dmarc.bank.example': { TXT: ['v=DMARC1; p=reject'] },
    'shop.example': { TXT: ['v=spf1 ip4:192.0.2.20 -all'], A: ['192.0.2.20'] },
    '_dmarc.shop.example': { TXT: ['v=DMARC1; p=quarantine'] },
    'lists.example.net': { TXT: ['v=spf1 ip4:192.0.2.30 -all'], A: ['192.0.2.30'] },
    'arc._domainkey.lists.example.net': { TXT: [list.dns] },
    'broken.example': { A: ['192.0.2.40'] },
  });
  const config = (domain: string, file: string) => {
    const r = parseConfig({
      hostname: MTA,
      filters: {
        dkim: { domains: { [domain]: [{ selector: domain === 'bank.example' ? 's1' : 'arc', key: file }] } },
      },
    });
    if (!r.ok || !r.config.filters.dkim) throw new Error(JSON.stringify(r.ok ? 'no dkim' : r.errors));
    return r.config.filters.dkim;
  };
  signer = new DkimSigner(config('bank.example', join(dir, 'bank.pem')));
  listSigner = new DkimSigner(config('lists.example.net', join(dir, 'list.pem')));
});
afterAll(async () => {
  await dns?.close();
  rmSync(dir, { recursive: true, force: true });
});

const lookup = () => lookupThrough([dns.server], 2000);
const message = (from: string, body = 'Hello.\r\n') =>
  Buffer.from(
    `From: <${from}>\r\nTo: <you@example.com>\r\nSubject: statement\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <1@${from.split('@')[1]}>\r\n\r\n${body}`,
  );
async function signed(m: Buffer, by = signer): Promise<Buffer> {
  const s = await by.sign(m);
  if (!s) throw new Error('not signed');
  return Buffer.concat([Buffer.from(s.headers), m]);
}
const check = (body: Buffer, clientIp: string, sender: string) =>
  authenticateSender(body, { clientIp, helo: 'mx.sender.example', sender }, { mta: MTA, lookup: lookup() });

const policy = (() => {
  const r = parseConfig({
    hostname: MTA,
    filters: { authentication: { trustedArcSealers: ['lists.example.net'] } },
  });
  if (!r.ok || !r.config.filters.authentication) throw new Error('config');
  return r.config.filters.authentication;
})();

describe('SPF', () => {
  test('pass, fail, temperror', async () => {
    const m = message('ceo@bank.example');
    expect((await check(m, '192.0.2.10', 'ceo@bank.example')).spf).toBe('pass');
    expect((await check(m, '198.51.100.7', 'ceo@bank.example')).spf).toBe('fail');
    dns.fail('bank.example', 'servfail');
    try {
      expect((await check(m, '192.0.2.10', 'ceo@bank.example')).spf).toBe('temperror');
    } finally {
      dns.fail('bank.example', null);
    }
  });
});

describe('DKIM', () => {
  test('a signature Moat made verifies; a changed body fails; an unreachable key is temperror', async () => {
    const m = await signed(message('ceo@bank.example'));
    expect((await check(m, '192.0.2.10', 'ceo@bank.example')).dkim).toBe('pass');
    const tampered = Buffer.from(m.toString().replace('Hello.', 'Pay me.'));
    expect((await check(tampered, '192.0.2.10', 'ceo@bank.example')).dkim).toMatch(/^(fail|neutral)$/);
    dns.fail('s1._domainkey.bank.example', 'servfail');
    try {
      expect((await check(m, '192.0.2.10', 'ceo@bank.example')).dkim).toBe('temperror');
    } finally {
      dns.fail('s1._domainkey.bank.example', null);
    }
  });
});

describe('DMARC', () => {
  test('pass when DKIM aligns, even from an address SPF does not list', async () => {
    const r = await check(await signed(message('ceo@bank.example')), '198.51.100.7', 'bounce@other.example');
    expect(r.dmarc).toMatchObject({ result: 'pass', domain: 'bank.example' });
    expect(decideAuthentication(policy, r).action).toBe('accept');
  });

  test('fail of a p=reject domain is refused in the session; of p=quarantine, tagged', async () => {
    const spoof = await check(message('ceo@bank.example'), '198.51.100.7', 'ceo@bank.example');
    expect(spoof.dmarc).toMatchObject({ result: 'fail', policy: 'reject', domain: 'bank.example' });
    const d = decideAuthentication(policy, spoof);
    expect(d.action).toBe('reject');
    expect(`${d.reply?.code} ${d.reply?.enhanced} ${d.reply?.text}`).toBe(
      '550 5.7.1 Message rejected by the DMARC policy of the From domain: bank.example',
    );
    const shop = await check(message('news@shop.example'), '198.51.100.7', 'news@shop.example');
    expect(shop.dmarc).toMatchObject({ result: 'fail', policy: 'quarantine' });
    expect(decideAuthentication(policy, shop).action).toBe('tag');
  });

  test('temperror when the policy cannot be looked up: accepted, never refused', async () => {
    dns.fail('_dmarc.bank.example', 'servfail');
    try {
      const r = await check(message('ceo@bank.example'), '198.51.100.7', 'ceo@bank.example');
      expect(r.dmarc.result).toBe('temperror');
      expect(decideAuthentication(policy, r).action).toBe('accept');
    } finally {
      dns.fail('_dmarc.bank.example', null);
    }
  });
});

describe('ARC', () => {
  /** A mailing list checked the bank's mail, added its footer, and sealed what it had found. */
  async function throughTheList(): Promise<Buffer> {
    const original = await signed(message('ceo@bank.example'));
    const atList = await authenticate(original, {
      ip: '192.0.2.10',
      helo: 'mx.bank.example',
      sender: 'ceo@bank.example',
      mta: 'mx.lists.example.net',
      resolver: lookup() as never,
      disableBimi: true,
    });
    const found = /Authentication-Results: ((?:[^\r]|\r\n[ \t])*)/.exec(atList.headers)?.[1];
    if (!found) throw new Error('no Authentication-Results at the list');
    const modified = Buffer.from(
      original.toString().replace('Hello.\r\n', 'Hello.\r\n-- \r\nThe list footer\r\n'),
    );
    const arcSet = await sealMessage(modified, {
      signingDomain: 'lists.example.net',
      selector: 'arc',
      privateKey: listKey,
      authResults: found.replace(/\r\n[ \t]+/g, ' '),
      cv: 'none',
    });
    return Buffer.concat([arcSet, modified]);
  }

  test('pass: the sealer is trusted, so its chain overrides the DMARC fail the footer caused', async () => {
    const r = await check(await throughTheList(), '192.0.2.30', 'list-bounces@lists.example.net');
    expect(r.dkim).not.toBe('pass');
    expect(r.dmarc.result).toBe('fail');
    expect(r.arc).toEqual({ result: 'pass', sealer: 'lists.example.net' });
    const d = decideAuthentication(policy, r);
    expect(d.action).toBe('accept');
    expect(d.reason).toContain('ARC chain sealed by lists.example.net');
  });

  test('fail: a broken seal does not override anything', async () => {
    const m = (await throughTheList()).toString();
    // One character of the seal's signature (its b= tag) changed.
    const seal = m.indexOf('ARC-Seal:');
    const at = m.indexOf('b=', seal) + 2;
    const tampered = `${m.slice(0, at)}${m[at] === 'A' ? 'B' : 'A'}${m.slice(at + 1)}`;
    expect(seal).toBeGreaterThanOrEqual(0);
    const r = await check(Buffer.from(tampered), '192.0.2.30', 'list-bounces@lists.example.net');
    expect(r.arc.result).toBe('fail');
    expect(decideAuthentication(policy, r).action).toBe('reject');
  });

  test('temperror: the sealer key cannot be looked up', async () => {
    const m = await throughTheList();
    dns.fail('arc._domainkey.lists.example.net', 'servfail');
    try {
      const r = await check(m, '192.0.2.30', 'list-bounces@lists.example.net');
      expect(r.arc.result).toMatch(/^(temperror|fail)$/);
      expect(decideAuthentication(policy, r).action).not.toBe('accept');
    } finally {
      dns.fail('arc._domainkey.lists.example.net', null);
    }
  });
});

describe('lookupThrough', () => {
  test('answers and NXDOMAIN are kept for cacheMs; SERVFAIL is asked again every time', async () => {
    const lookup = lookupThrough([dns.server], 2000, 60_000);
    const start = dns.queries.length;
    const asked = (name: string) => dns.queries.slice(start).filter((q) => q.name === name).length;
    await lookup('bank.example', 'TXT');
    await lookup('BANK.example', 'TXT');
    expect(asked('bank.example')).toBe(1);
    await expect(lookup('nowhere.example', 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    await expect(lookup('nowhere.example', 'TXT')).rejects.toMatchObject({ code: 'ENOTFOUND' });
    expect(asked('nowhere.example')).toBe(1);
    dns.fail('broken.example', 'servfail');
    try {
      for (let i = 0; i < 2; i++)
        await expect(lookup('broken.example', 'A')).rejects.toMatchObject({ code: 'ESERVFAIL' });
      expect(asked('broken.example')).toBeGreaterThanOrEqual(2);
    } finally {
      dns.fail('broken.example', null);
    }
    expect(await lookup('broken.example', 'A')).toEqual(['192.0.2.40']);
  });

  test('with cacheMs 0 every lookup asks', async () => {
    const lookup = lookupThrough([dns.server], 2000, 0);
    const before = dns.queries.filter((q) => q.name === 'shop.example').length;
    await lookup('shop.example', 'TXT');
    await lookup('shop.example', 'TXT');
    expect(dns.queries.filter((q) => q.name === 'shop.example').length - before).toBe(2);
  });
});

describe('the Authentication-Results Moat adds', () => {
  test('one field, Moat as authserv-id, every method, CRLF', async () => {
    const r = await check(await signed(message('ceo@bank.example')), '192.0.2.10', 'ceo@bank.example');
    const block = r.headers.join('');
    expect(block.match(/^Authentication-Results:/gm)).toHaveLength(1);
    expect(block).toMatch(/^Authentication-Results: relay\.example\.com;/m);
    for (const method of ['dkim=pass', 'spf=pass', 'dmarc=pass', 'arc=none']) expect(block).toContain(method);
    expect(block.replace(/\r\n/g, '')).not.toContain('\n');
    expect(block.endsWith('\r\n')).toBe(true);
  });

  test('all lookups went to the test DNS server, none elsewhere (the resolver is ours)', () => {
    expect(dns.queries.length).toBeGreaterThan(0);
    expect(dns.queries.some((q) => q.name === '_dmarc.bank.example' && q.type === 'TXT')).toBe(true);
  });

  test('a list signer signs its own domain only', async () => {
    expect(await listSigner.sign(message('ceo@bank.example'))).toBeNull();
  });
});
