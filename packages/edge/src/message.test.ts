import { describe, expect, test } from 'vitest';
import { canonicalLineEndings, hasBareEnding, headerFacts } from './message.js';

const canon = (s: string) => canonicalLineEndings(Buffer.from(s, 'latin1')).toString('latin1');

/** The definition, byte by byte: a CR not followed by LF, or an LF not preceded by CR. */
function bareByteByByte(body: Buffer): boolean {
  for (let i = 0; i < body.length; i++) {
    if (body[i] === 0x0a && (i === 0 || body[i - 1] !== 0x0d)) return true;
    if (body[i] === 0x0d && body[i + 1] !== 0x0a) return true;
  }
  return false;
}

describe('hasBareEnding', () => {
  test('agrees with the definition on random bodies at every alignment, with bytes near CR and LF', () => {
    let seed = 7;
    // The high bits: the low bits of this generator repeat with a short period.
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed >>> 12;
    };
    // CR, LF, the other bytes below 0x0e a word test stops at (NUL, tab, VT, FF), their
    // neighbours 0x0e and 0x0c, 8-bit bytes (0x8a, 0x8d, 0xff) and text.
    const bytes = [0x0d, 0x0a, 0x00, 0x09, 0x0b, 0x0c, 0x0e, 0x8a, 0x8d, 0xff, 0x61, 0x61, 0x61];
    const memory = Buffer.alloc(64);
    let bare = 0;
    for (let n = 0; n < 20_000; n++) {
      const offset = next() % 4;
      const body = memory.subarray(offset, offset + (next() % 40));
      for (let i = 0; i < body.length; i++) body[i] = bytes[next() % bytes.length] as number;
      const expected = bareByteByByte(body);
      if (expected) bare++;
      expect(hasBareEnding(body), `${JSON.stringify([...body])} at offset ${offset}`).toBe(expected);
    }
    // Both answers were exercised, many times.
    expect(bare).toBeGreaterThan(1000);
    expect(20_000 - bare).toBeGreaterThan(1000);
  });

  test('one bare CR or LF anywhere in a long canonical body is found, at every alignment', () => {
    const text = Buffer.from(`${'x'.repeat(76)}\r\n`.repeat(40), 'latin1');
    const memory = Buffer.alloc(text.length + 4);
    for (const offset of [0, 1, 2, 3]) {
      const body = memory.subarray(offset, offset + text.length);
      text.copy(body);
      expect(hasBareEnding(body)).toBe(false);
      for (let at = 0; at < body.length; at += 7) {
        const was = body[at] as number;
        for (const byte of [0x0d, 0x0a]) {
          body[at] = byte;
          expect(hasBareEnding(body), `${byte} at ${at}, offset ${offset}`).toBe(bareByteByByte(body));
        }
        body[at] = was;
      }
    }
  });
});

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
