import { describe, expect, test } from 'vitest';
import { canonicalLineEndings, headerFacts } from './message.js';

const canon = (s: string) => canonicalLineEndings(Buffer.from(s, 'latin1')).toString('latin1');

describe('canonicalLineEndings', () => {
  test.each([
    ['a\r\nb\r\n', 'a\r\nb\r\n'],
    ['a\nb\n', 'a\r\nb\r\n'],
    ['a\rb\r', 'a\r\nb\r\n'],
    ['\n.\n', '\r\n.\r\n'],
    ['\r.\r', '\r\n.\r\n'],
    ['x\n\r\ny', 'x\r\n\r\ny'],
    ['x\r\r\ny', 'x\r\n\r\ny'],
    ['\n', '\r\n'],
    ['', ''],
  ])('%j → %j', (input, output) => {
    expect(canon(input)).toBe(output);
  });

  test('a body that is already canonical is returned as is, not copied', () => {
    const body = Buffer.from('Subject: x\r\n\r\nbody\r\n');
    expect(canonicalLineEndings(body)).toBe(body);
  });

  test('agrees with a plain regular-expression version on random bodies', () => {
    let seed = 42;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    const alphabet = ['a', '.', '\r', '\n', '\r\n', ' '];
    for (let n = 0; n < 500; n++) {
      const text = Array.from({ length: next() % 40 }, () => alphabet[next() % alphabet.length]).join('');
      const expected = text.replace(/\r\n|\r|\n/g, '\r\n');
      expect(canon(text)).toBe(expected);
    }
  });
});

test('headerFacts counts Received: and sees Message-ID and Date only in the header block', () => {
  const body = Buffer.from(
    'Received: from a\r\n\tby b\r\nRECEIVED: from c\r\nDate: Sat, 28 Nov 2026 10:00:00 +0000\r\nSubject: x\r\n\r\nMessage-ID: <not-a-header>\r\nReceived: no\r\n',
  );
  expect(headerFacts(body)).toEqual({ received: 2, hasMessageId: false, hasDate: true });
});
