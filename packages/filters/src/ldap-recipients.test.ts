/**
 * LdapRecipients against a real slapd (testkit's: own config, mdb, `proxyAddresses` declared as
 * in Active Directory), one plain instance and one that requires StartTLS.
 */
import { freePort, type Slapd, startSlapd } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DaemonError } from './daemon-socket.js';
import {
  DEFAULT_LDAP_FILTER,
  escapeFilterValue,
  LdapRecipients,
  type LdapSourceConfig,
  recipientFilter,
} from './ldap-recipients.js';

const ENTRIES = `dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: moatMailRecipient
uid: alice
cn: Alice Smith
sn: Smith
mail: alice@example.com
proxyAddresses: SMTP:alice@example.com
proxyAddresses: smtp:a.smith@example.com

dn: uid=shared1,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: moatMailRecipient
uid: shared1
cn: Shared One
sn: One
proxyAddresses: smtp:team@example.com

dn: uid=shared2,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: moatMailRecipient
uid: shared2
cn: Shared Two
sn: Two
proxyAddresses: SMTP:team@example.com

dn: ou=services,dc=example,dc=com
objectClass: organizationalUnit
ou: services

dn: cn=moat,ou=services,dc=example,dc=com
objectClass: person
cn: moat
sn: moat
userPassword: moat-lookup-secret
`;

const MOAT_DN = 'cn=moat,ou=services,dc=example,dc=com';

let slapd: Slapd;
let tlsSlapd: Slapd;
const clients: LdapRecipients[] = [];

beforeAll(async () => {
  [slapd, tlsSlapd] = await Promise.all([
    startSlapd({ entries: ENTRIES }),
    startSlapd({ entries: ENTRIES, requireTls: true }),
  ]);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await Promise.all([slapd?.stop(), tlsSlapd?.stop()]);
});

function source(config: Partial<LdapSourceConfig> = {}): LdapRecipients {
  const client = new LdapRecipients({
    url: slapd.url,
    startTls: false,
    bindDn: MOAT_DN,
    bindPassword: 'moat-lookup-secret',
    base: 'dc=example,dc=com',
    filter: DEFAULT_LDAP_FILTER,
    timeoutMs: 2000,
    tlsRejectUnauthorized: true,
    ...config,
  });
  clients.push(client);
  return client;
}

const signal = () => AbortSignal.timeout(5000);

/** The DaemonError a lookup throws (fails the test when it answers instead). */
async function failure(lookup: Promise<unknown>): Promise<DaemonError> {
  const outcome = await lookup.then(
    (answer) => new Error(`answered ${JSON.stringify(answer)}`),
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(DaemonError);
  return outcome as DaemonError;
}

describe('LdapRecipients (real slapd)', () => {
  test('known via mail, via the primary and a secondary proxyAddresses value, any case', async () => {
    const ldap = source();
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    expect(await ldap.lookup('Alice@EXAMPLE.com', signal())).toBe('known');
    // Only in proxyAddresses: "smtp:a.smith@…" (secondary) and "SMTP:team@…" (primary) on
    // two entries (sizeLimit 1: slapd answers one entry and sizeLimitExceeded, still known).
    expect(await ldap.lookup('a.smith@example.com', signal())).toBe('known');
    expect(await ldap.lookup('team@example.com', signal())).toBe('known');
    expect(await ldap.lookup('nobody@example.com', signal())).toBe('unknown');
    expect(await ldap.lookup('smith@example.com', signal())).toBe('unknown');
  });

  test('anonymous lookups (bindDn null) work too', async () => {
    const ldap = source({ bindDn: null, bindPassword: null });
    expect(await ldap.lookup('a.smith@example.com', signal())).toBe('known');
    expect(await ldap.lookup('bob@example.com', signal())).toBe('unknown');
  });

  test('a wildcard or filter injection in the address matches nothing', async () => {
    const ldap = source();
    for (const address of [
      '*@example.com',
      '*',
      'alice@example.com)(mail=*',
      '*)(|(mail=*',
      'a*@example.com',
      'alice@example.com\\2a',
      // slapd ends an IA5String assertion at NUL: without the guard these would be known.
      'alice@example.com\0',
      'alice@example.com\0.attacker',
      'alice@example.com\r\n',
    ]) {
      expect(await ldap.lookup(address, signal()), address).toBe('unknown');
    }
    // The unescaped filter would have matched: the test can fail.
    expect(recipientFilter('(mail=%s)', '*@example.com')).toBe('(mail=\\2a@example.com)');
  });

  test('concurrent lookups share one bound connection', async () => {
    const sockets = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
    const before = sockets();
    const ldap = source();
    const addresses = ['alice@example.com', 'nobody@example.com', 'team@example.com', 'x@example.com'];
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => ldap.lookup(addresses[i % 4] ?? '', signal())),
    );
    expect(answers).toEqual(
      Array.from({ length: 40 }, (_, i) => (['known', 'unknown'] as const)[i % 2 === 0 ? 0 : 1]),
    );
    expect(sockets() - before).toBe(1);
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    expect(sockets() - before).toBe(1);
  });

  test('StartTLS (the server refuses plain operations), certificate not checked', async () => {
    const ldap = source({ url: tlsSlapd.url, startTls: true, tlsRejectUnauthorized: false });
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    expect(await ldap.lookup('nobody@example.com', signal())).toBe('unknown');
    // Without StartTLS the same server refuses: so the lookups above went over TLS.
    const plain = source({ url: tlsSlapd.url });
    expect((await failure(plain.lookup('alice@example.com', signal()))).message).toMatch(
      /^ldap at 127\.0\.0\.1:\d+: bind as cn=moat,ou=services,dc=example,dc=com: ConfidentialityRequiredError \(result code 13\)/,
    );
    // A self-signed certificate is refused when it is checked.
    const checked = source({ url: tlsSlapd.url, startTls: true, tlsRejectUnauthorized: true });
    expect((await failure(checked.lookup('alice@example.com', signal()))).message).toMatch(
      /^ldap at 127\.0\.0\.1:\d+: StartTLS: .*self[- ]signed/i,
    );
  });

  test('a wrong bind password throws, never unknown', async () => {
    const ldap = source({ bindPassword: 'wrong' });
    const err = await failure(ldap.lookup('nobody@example.com', signal()));
    expect(err.message).toBe(
      `ldap at 127.0.0.1:${slapd.port}: bind as ${MOAT_DN}: InvalidCredentialsError (result code 49)`,
    );
    // And again on the next lookup (a new attempt, not a cached success).
    await failure(ldap.lookup('alice@example.com', signal()));
  });

  test('nobody listening: ECONNREFUSED, naming the server', async () => {
    const port = await freePort();
    const ldap = source({ url: `ldap://127.0.0.1:${port}` });
    expect((await failure(ldap.lookup('alice@example.com', signal()))).message).toBe(
      `ldap at 127.0.0.1:${port}: ECONNREFUSED`,
    );
  });

  test('a search error (no such base) throws', async () => {
    const ldap = source({ base: 'ou=nowhere,dc=example,dc=com' });
    expect((await failure(ldap.lookup('alice@example.com', signal()))).message).toMatch(
      /: search in ou=nowhere,dc=example,dc=com: NoSuchObjectError \(result code 32\)/,
    );
  });

  test('slapd hung (SIGSTOP): throws by the deadline; answers again once resumed', async () => {
    const ldap = source();
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    slapd.pause();
    try {
      const started = Date.now();
      const err = await failure(ldap.lookup('alice@example.com', AbortSignal.timeout(300)));
      expect(err.message).toBe(`ldap at 127.0.0.1:${slapd.port}: no answer in time`);
      expect(Date.now() - started).toBeLessThan(1000);
      // A new connection (bind) hangs the same way.
      await failure(source().lookup('alice@example.com', AbortSignal.timeout(300)));
    } finally {
      slapd.resume();
    }
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
  });

  test('slapd stopped: throws (not unknown); back: the same object reconnects and rebinds', async () => {
    const ldap = source();
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    await slapd.kill();
    try {
      const err = await failure(ldap.lookup('nobody@example.com', signal()));
      expect(err.message).toMatch(/^ldap at 127\.0\.0\.1:\d+: (ECONNREFUSED|search: .*)$/);
      expect(await failure(ldap.lookup('alice@example.com', signal()))).toBeInstanceOf(DaemonError);
    } finally {
      await slapd.restart();
    }
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    expect(await ldap.lookup('nobody@example.com', signal())).toBe('unknown');
  });

  test('a connection the server dropped while idle is replaced without an error', async () => {
    const ldap = source();
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    await slapd.restart(); // graceful: slapd closes every connection
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
  });

  test('close(): later lookups throw', async () => {
    const ldap = source();
    expect(await ldap.lookup('alice@example.com', signal())).toBe('known');
    await ldap.close();
    expect((await failure(ldap.lookup('alice@example.com', signal()))).message).toMatch(/: closed$/);
  });
});

describe('escapeFilterValue (RFC 4515)', () => {
  test.each([
    ['alice@example.com', 'alice@example.com'],
    ['*', '\\2a'],
    ['a(b)c', 'a\\28b\\29c'],
    ['back\\slash', 'back\\5cslash'],
    ['nul\0', 'nul\\00'],
    ['jörg@exämple.de', 'jörg@exämple.de'],
  ])('%j → %j', (value, escaped) => {
    expect(escapeFilterValue(value)).toBe(escaped);
  });

  test('every %s of the template, and `$` in the address is not a replacement pattern', () => {
    expect(recipientFilter(DEFAULT_LDAP_FILTER, 'a$&b@x')).toBe(
      '(|(mail=a$&b@x)(proxyAddresses=smtp:a$&b@x))',
    );
  });
});
