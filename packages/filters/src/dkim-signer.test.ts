import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '@moat/policy';
import { type DnsServer, startDns } from '@moat/testkit';
import { dkimVerify } from 'mailauth';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { lookupThrough } from './authentication.js';
import { checkDkimKeys, DkimSigner, fromDomain } from './dkim-signer.js';

let dir: string;
let dns: DnsServer;

function key(type: 'rsa' | 'ed25519', file: string, bits = 2048): string {
  const pair =
    type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }) : generateKeyPairSync('ed25519');
  writeFileSync(join(dir, file), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const der = pair.publicKey.export({ type: 'spki', format: 'der' });
  // Ed25519 records carry the bare 32-byte key (RFC 8463 §4.2), RSA the SubjectPublicKeyInfo.
  const p = type === 'rsa' ? der.toString('base64') : der.subarray(der.length - 32).toString('base64');
  return `v=DKIM1; k=${type}; p=${p}`;
}

function dkimConfig(domains: Record<string, { selector: string; key: string }[]>, headers?: string[]) {
  const r = parseConfig({
    hostname: 'relay.example.com',
    filters: { dkim: { domains, ...(headers ? { headers } : {}) } },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  if (!r.config.filters.dkim) throw new Error('no dkim');
  return r.config.filters.dkim;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'moat-dkim-'));
  dns = await startDns({
    'rsa2026._domainkey.example.com': { TXT: [key('rsa', 'rsa.pem')] },
    'ed2026._domainkey.example.com': { TXT: [key('ed25519', 'ed.pem')] },
  });
  key('rsa', 'small.pem', 512);
  writeFileSync(join(dir, 'not-a-key.pem'), 'hello\n');
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  writeFileSync(join(dir, 'ec.pem'), ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
});
afterAll(async () => {
  await dns?.close();
  rmSync(dir, { recursive: true, force: true });
});

const MESSAGE = Buffer.from(
  'From: "Alice" <alice@Example.COM>\r\nTo: bob@example.org\r\nSubject: report\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <r1@example.com>\r\n\r\nNumbers.\r\n.dot line\r\n',
);

async function verify(message: Buffer) {
  const r = await dkimVerify(message, { resolver: lookupThrough([dns.server], 2000) as never });
  return r.results.map((x) => ({
    result: x.status.result,
    selector: (x as { selector?: string }).selector,
    algo: (x as { algo?: string }).algo,
  }));
}

describe('DkimSigner', () => {
  test.each([
    ['RSA-SHA256', 'rsa2026', 'rsa.pem', 'rsa-sha256'],
    ['Ed25519-SHA256', 'ed2026', 'ed.pem', 'ed25519-sha256'],
  ])('%s: a signature that verifies against the published key', async (_name, selector, file, algo) => {
    const signer = new DkimSigner(dkimConfig({ 'example.com': [{ selector, key: join(dir, file) }] }));
    const signed = await signer.sign(MESSAGE);
    expect(signed).toMatchObject({ domain: 'example.com', selectors: [selector] });
    const message = Buffer.concat([Buffer.from(signed?.headers ?? ''), MESSAGE]);
    expect(await verify(message)).toEqual([{ result: 'pass', selector, algo }]);
    expect(signed?.headers).toMatch(/^DKIM-Signature: /);
    expect(signed?.headers.endsWith('\r\n')).toBe(true);
  });

  test('two selectors during a key rotation: two signatures, both pass', async () => {
    const signer = new DkimSigner(
      dkimConfig({
        'example.com': [
          { selector: 'rsa2026', key: join(dir, 'rsa.pem') },
          { selector: 'ed2026', key: join(dir, 'ed.pem') },
        ],
      }),
    );
    const signed = await signer.sign(MESSAGE);
    const message = Buffer.concat([Buffer.from(signed?.headers ?? ''), MESSAGE]);
    expect((await verify(message)).map((r) => r.result)).toEqual(['pass', 'pass']);
  });

  test('the configured header list is what is signed', async () => {
    const signer = new DkimSigner(
      dkimConfig({ 'example.com': [{ selector: 'rsa2026', key: join(dir, 'rsa.pem') }] }, [
        'From',
        'Subject',
      ]),
    );
    const signed = await signer.sign(MESSAGE);
    const h = /\bh=([^;]*);/.exec(signed?.headers.replace(/\r\n\s+/g, ' ') ?? '')?.[1] ?? '';
    expect(
      h
        .split(':')
        .map((name) => name.trim().toLowerCase())
        .sort(),
    ).toEqual(['from', 'subject']);
  });

  test('a From domain without a key is not signed', async () => {
    const signer = new DkimSigner(
      dkimConfig({ 'example.com': [{ selector: 'rsa2026', key: join(dir, 'rsa.pem') }] }),
    );
    expect(await signer.sign(Buffer.from('From: x@other.example\r\n\r\nhi\r\n'))).toBeNull();
  });
});

describe('key checks (moat config check)', () => {
  test.each([
    ['missing.pem', /cannot read .*missing\.pem: ENOENT/],
    ['not-a-key.pem', /is not a PEM private key/],
    ['small.pem', /RSA key of 512 bits; DKIM needs 1024 or more/],
    ['ec.pem', /is a ec key; DKIM signs with RSA or Ed25519/],
  ])('%s is refused, naming the key', (file, message) => {
    const errors = checkDkimKeys(dkimConfig({ 'example.com': [{ selector: 's1', key: join(dir, file) }] }));
    expect(errors).toEqual([
      {
        path: ['filters', 'dkim', 'domains', 'example.com', 0, 'key'],
        message: expect.stringMatching(message),
      },
    ]);
  });

  test('good keys pass', () => {
    expect(
      checkDkimKeys(
        dkimConfig({
          'example.com': [
            { selector: 'a', key: join(dir, 'rsa.pem') },
            { selector: 'b', key: join(dir, 'ed.pem') },
          ],
        }),
      ),
    ).toEqual([]);
  });

  test.each([
    [
      { 'example.com': [{ selector: 'bad selector', key: 'x' }] },
      'filters.dkim.domains["example.com"][0].selector',
    ],
    [{ 'example.com': [] }, 'filters.dkim.domains["example.com"]'],
    [
      {
        'example.com': [
          { selector: 'a', key: 'x' },
          { selector: 'A', key: 'y' },
        ],
      },
      'filters.dkim.domains["example.com"][1].selector',
    ],
    [{ 'not a domain': [{ selector: 'a', key: 'x' }] }, 'filters.dkim.domains["not a domain"]'],
  ])('the schema names the bad key: %j', (domains, path) => {
    const r = parseConfig({ hostname: 'relay.example.com', filters: { dkim: { domains } } });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path)).toContain(path);
  });
});

test.each([
  ['From: a@example.com', 'example.com'],
  ['From: "a@evil.example" <b@Example.Com>', 'example.com'],
  ['From: Alice (work@evil.example)\r\n <alice@example.com>', 'example.com'],
  ['To: a@example.com', null],
])('fromDomain %j → %s', (head, domain) => {
  expect(fromDomain(Buffer.from(`${head}\r\n\r\nbody\r\n`))).toBe(domain);
});
