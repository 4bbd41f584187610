import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { describeTrick, TRICKS, type Trick } from './address-tricks.js';
import {
  type AddressErrorCode,
  formatLocalPart,
  isAddressError,
  type ParsedAddress,
  parseAddress,
  parseSender,
} from './addresses.js';

function parsed(input: string): ParsedAddress {
  const r = parseAddress(input);
  if (isAddressError(r)) throw new Error(`${input}: ${r.message}`);
  return r;
}

describe('parseAddress accepts', () => {
  test.each<[string, string, string, string, Trick[]]>([
    // input, local, domain, canonical address, tricks
    ['user@example.com', 'user', 'example.com', 'user@example.com', []],
    ['<user@example.com>', 'user', 'example.com', 'user@example.com', []],
    ['User.Name+tag@Example.COM', 'User.Name+tag', 'example.com', 'User.Name+tag@example.com', []],
    ["o'brien@example.com", "o'brien", 'example.com', "o'brien@example.com", []],
    ['a@b.co', 'a', 'b.co', 'a@b.co', []],
    ['"john doe"@example.com', 'john doe', 'example.com', '"john doe"@example.com', []],
    ['"john"@example.com', 'john', 'example.com', 'john@example.com', []],
    ['"\\j\\o\\e"@example.com', 'joe', 'example.com', 'joe@example.com', []],
    ['"a\\"b\\\\c"@example.com', 'a"b\\c', 'example.com', '"a\\"b\\\\c"@example.com', []],
    ['"a..b"@example.com', 'a..b', 'example.com', '"a..b"@example.com', []],
    ['user@bücher.example', 'user', 'xn--bcher-kva.example', 'user@xn--bcher-kva.example', []],
    ['user@BÜCHER.example', 'user', 'xn--bcher-kva.example', 'user@xn--bcher-kva.example', []],
    ['user@XN--BCHER-KVA.example', 'user', 'xn--bcher-kva.example', 'user@xn--bcher-kva.example', []],
    ['üser@example.com', 'üser', 'example.com', 'üser@example.com', []],
    [
      'δοκιμή@παράδειγμα.δοκιμή',
      'δοκιμή',
      'xn--hxajbheg2az3al.xn--jxalpdlp',
      'δοκιμή@xn--hxajbheg2az3al.xn--jxalpdlp',
      [],
    ],
    ['用户@例子.广告', '用户', 'xn--fsqu00a.xn--4rr70v', '用户@xn--fsqu00a.xn--4rr70v', []],
    // Tricks that still parse.
    [
      'user%foreign.example@example.com',
      'user%foreign.example',
      'example.com',
      'user%foreign.example@example.com',
      ['percent-hack'],
    ],
    [
      '"user%foreign.example"@example.com',
      'user%foreign.example',
      'example.com',
      'user%foreign.example@example.com',
      ['percent-hack'],
    ],
    [
      'foreign.example!user@example.com',
      'foreign.example!user',
      'example.com',
      'foreign.example!user@example.com',
      ['bang-path'],
    ],
    [
      '"user@foreign.example"@example.com',
      'user@foreign.example',
      'example.com',
      '"user@foreign.example"@example.com',
      ['quoted-at'],
    ],
    [
      '"a%b!c@d"@example.com',
      'a%b!c@d',
      'example.com',
      '"a%b!c@d"@example.com',
      ['percent-hack', 'bang-path', 'quoted-at'],
    ],
    ['@a.example,@b.example:user@c.example', 'user', 'c.example', 'user@c.example', ['source-route']],
    [
      '<@example.com:user@foreign.example>',
      'user',
      'foreign.example',
      'user@foreign.example',
      ['source-route'],
    ],
    ['user@[192.0.2.1]', 'user', '[192.0.2.1]', 'user@[192.0.2.1]', ['address-literal']],
    [
      'user@[IPv6:2001:DB8:0::1]',
      'user',
      '[IPv6:2001:db8::1]',
      'user@[IPv6:2001:db8::1]',
      ['address-literal'],
    ],
    ['user@[ipv6:::1]', 'user', '[IPv6:::1]', 'user@[IPv6:::1]', ['address-literal']],
    ['user@127.0.0.1', 'user', '127.0.0.1', 'user@127.0.0.1', ['address-literal']],
    ['user@example.com.', 'user', 'example.com', 'user@example.com', ['trailing-dot']],
    ['user@EXAMPLE.com.', 'user', 'example.com', 'user@example.com', ['trailing-dot']],
    [
      "!#$%&'*+-/=?^_`{|}~@example.com",
      "!#$%&'*+-/=?^_`{|}~",
      'example.com',
      "!#$%&'*+-/=?^_`{|}~@example.com",
      ['percent-hack', 'bang-path'],
    ],
    [`${'a'.repeat(64)}@example.com`, 'a'.repeat(64), 'example.com', `${'a'.repeat(64)}@example.com`, []],
  ])('%s', (input, local, domain, address, tricks) => {
    expect(parsed(input)).toEqual({ local, domain, address, utf8: /[^\x20-\x7e]/.test(local), tricks });
  });

  test('a source route and a trick in the local part are both recorded', () => {
    expect(parsed('@example.com:user%foreign.example@example.com').tricks).toEqual([
      'source-route',
      'percent-hack',
    ]);
  });

  test('utf8 is about the local part only (the domain becomes an A-label)', () => {
    expect(parsed('user@bücher.example').utf8).toBe(false);
    expect(parsed('müller@example.com').utf8).toBe(true);
    expect(parsed('"zoë smith"@example.com').utf8).toBe(true);
  });
});

describe('parseAddress refuses', () => {
  const domain190 = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(58)}.example`;
  test.each<[string, AddressErrorCode]>([
    ['', 'empty'],
    ['<>', 'empty'],
    // More than one "@" outside quotes, however it is dressed up.
    ['user@foreign.example@example.com', 'multiple-at'],
    ['user\\@foreign.example@example.com', 'multiple-at'],
    ['user@@example.com', 'multiple-at'],
    ['"a"@b.example@example.com', 'multiple-at'],
    ['user@[192.0.2.1]@example.com', 'multiple-at'],
    // Local part.
    ['@example.com', 'syntax'],
    ['""@example.com', 'syntax'],
    ['.user@example.com', 'syntax'],
    ['user.@example.com', 'syntax'],
    ['us..er@example.com', 'syntax'],
    ['us er@example.com', 'syntax'],
    ['user @example.com', 'syntax'],
    [' user@example.com', 'syntax'],
    ['user\u00a0x@example.com', 'syntax'],
    ['user"@example.com', 'syntax'],
    ['a:b@example.com', 'syntax'],
    ['a\\b@example.com', 'syntax'],
    ['"unterminated@example.com', 'syntax'],
    ['"a"b@example.com', 'syntax'],
    ['"a".b@example.com', 'syntax'],
    ['"trailing backslash\\"@example.com', 'syntax'],
    ['"a\\ü"@example.com', 'syntax'],
    ['user', 'syntax'],
    ['"user"', 'syntax'],
    // Control characters, even quoted or escaped.
    ['user\u0000@example.com', 'control-char'],
    ['user\r\n@example.com', 'control-char'],
    ['"user\r\nRCPT TO:<x@foreign.example>"@example.com', 'control-char'],
    ['"a\\\u0001"@example.com', 'control-char'],
    ['user\u007f@example.com', 'control-char'],
    ['user\u0085@example.com', 'control-char'],
    ['user\u202e@example.com', 'control-char'],
    ['user\u200b@example.com', 'control-char'],
    ['\ud800@example.com', 'control-char'],
    ['user@exam\tple.com', 'control-char'],
    // Brackets.
    ['<user@example.com', 'syntax'],
    ['user@example.com>', 'syntax'],
    ['<<user@example.com>>', 'syntax'],
    ['<', 'syntax'],
    // Domain.
    ['user@', 'syntax'],
    ['user@.', 'syntax'],
    ['user@example..com', 'syntax'],
    ['user@example.com..', 'syntax'],
    ['user@.example.com', 'syntax'],
    ['user@-example.com', 'syntax'],
    ['user@exa mple.com', 'syntax'],
    ['user@exa_mple.com', 'syntax'],
    ['user@ex%ample.com', 'syntax'],
    ['user@localhost', 'syntax'],
    ['user@127.1', 'syntax'],
    ['user@0x7f.1', 'syntax'],
    ['user@example.123', 'syntax'],
    // Address literals Moat does not understand.
    ['user@[192.0.2.1', 'syntax'],
    ['user@[192.0.2.1]x', 'syntax'],
    ['user@[300.1.1.1]', 'syntax'],
    ['user@[192.0.2]', 'syntax'],
    ['user@[2001:db8::1]', 'syntax'],
    ['user@[IPv6:zz::1]', 'syntax'],
    ['user@[IPv6:fe80::1%eth0]', 'syntax'],
    ['user@[tag:content]', 'syntax'],
    ['user@[192.0.2.1].', 'syntax'],
    // Source routes.
    ['@example.com:', 'syntax'],
    ['@bad_domain:user@example.com', 'syntax'],
    ['@example.com,example.org:user@example.com', 'syntax'],
    ['@[192.0.2.1]:user@example.com', 'syntax'],
    ['@example.com:@example.org:user@example.com', 'multiple-at'],
    // Lengths (octets, not characters).
    [`${'a'.repeat(65)}@example.com`, 'too-long'],
    [`${'ü'.repeat(33)}@example.com`, 'too-long'],
    [`"${'a'.repeat(63)} "@example.com`, 'too-long'],
    [`${'a'.repeat(64)}@${domain190}`, 'too-long'],
    [`user@${'a'.repeat(256)}`, 'too-long'],
    ['x'.repeat(2000), 'too-long'],
  ])('%j (%s)', (input, code) => {
    const r = parseAddress(input);
    expect(isAddressError(r) ? r.error : r).toBe(code);
  });
});

test('an address of exactly 254 octets is accepted', () => {
  const domain = `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(53)}.example`;
  const address = `${'a'.repeat(64)}@${domain}`;
  expect(address.length).toBe(254);
  expect(parsed(address).address).toBe(address);
});

describe('parseSender', () => {
  test.each(['<>', ''])('%j is the null sender', (input) => {
    expect(parseSender(input)).toEqual({ null: true });
  });
  test('an address is parsed as such', () => {
    expect(parseSender('<Bounce+x@Example.com>')).toMatchObject({ address: 'Bounce+x@example.com' });
  });
  test('a bad sender is an error', () => {
    expect(parseSender('<a@b@example.com>')).toMatchObject({ error: 'multiple-at' });
  });
});

test('every trick has its own description', () => {
  const texts = TRICKS.map(describeTrick);
  expect(new Set(texts).size).toBe(TRICKS.length);
  for (const t of texts) expect(t).toMatch(/\w{4}/);
});

describe('properties', () => {
  const atext = fc.constantFrom(
    ..."abcxyzABCXYZ0189!#$%&'*+-/=?^_`{|}~".split(''),
    'ü',
    'é',
    'ß',
    '中',
    'д',
    '😀',
  );
  const atom = fc.string({ unit: atext, minLength: 1, maxLength: 8 });
  const dotAtom = fc.array(atom, { minLength: 1, maxLength: 4 }).map((a) => a.join('.'));
  const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?$/);
  const tld = fc.stringMatching(/^[a-zA-Z]{2,6}$/);
  const domain = fc
    .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), tld)
    .map(([labels, t]) => [...labels, t].join('.'));
  const address = fc.tuple(dotAtom, domain).map(([l, d]) => `${l}@${d}`);

  test('parseAddress never throws, and returns an address or an error', () => {
    const noise = fc.string({
      unit: fc.constantFrom('@', '"', '\\', '.', '<', '>', '[', ']', ':', ',', '%', '!', 'a', 'ü', ' ', '\r'),
    });
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string(), noise), (input) => {
        const r = parseAddress(input);
        expect(isAddressError(r) || typeof r.address === 'string').toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  test('a valid dot-atom address parses, and parse → address → parse is a fixed point', () => {
    fc.assert(
      fc.property(address, fc.boolean(), (text, brackets) => {
        const first = parsed(brackets ? `<${text}>` : text);
        expect(first.domain).toBe(first.domain.toLowerCase());
        expect(parsed(first.address)).toEqual(first);
      }),
      { numRuns: 1000 },
    );
  });

  test("fast-check's own email addresses are a fixed point whenever they parse", () => {
    fc.assert(
      fc.property(fc.emailAddress(), (text) => {
        const first = parseAddress(text);
        if (!isAddressError(first)) expect(parseAddress(first.address)).toEqual(first);
      }),
      { numRuns: 500 },
    );
  });

  test('any printable local part survives quoting: formatLocalPart → parse gives it back', () => {
    const printable = fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(printable, (local) => {
        const r = parsed(`${formatLocalPart(local)}@example.com`);
        expect(r.local).toBe(local);
        expect(parsed(r.address)).toEqual(r);
      }),
      { numRuns: 1000 },
    );
  });
});
