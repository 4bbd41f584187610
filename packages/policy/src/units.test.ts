import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js';

describe('parseSize', () => {
  test.each([
    ['35MB', 35 * 1024 * 1024],
    ['35mb', 35 * 1024 * 1024],
    ['512KB', 512 * 1024],
    ['1GB', 1024 ** 3],
    ['1.5MB', 1.5 * 1024 * 1024],
    ['1048576', 1048576],
    ['10 KiB', 10240],
    [0, 0],
  ])('%s → %d bytes', (input, bytes) => {
    expect(parseSize(input)).toEqual({ ok: true, value: bytes });
  });
  test.each(['', '-1MB', 'MB', '35 megs', '1e3', '1TB'])('rejects %j', (input) => {
    expect(parseSize(input).ok).toBe(false);
  });
  test('rejects negative and fractional numbers', () => {
    expect(parseSize(-1).ok).toBe(false);
    expect(parseSize(1.5).ok).toBe(false);
  });
  test('formatSize reads back to the same number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => {
        expect(parseSize(formatSize(n))).toEqual({ ok: true, value: n });
      }),
    );
  });
});

describe('parseDuration', () => {
  test.each([
    ['30s', 30_000],
    ['5m', 300_000],
    ['4h', 14_400_000],
    ['5d', 432_000_000],
    ['1h30m', 5_400_000],
    ['250ms', 250],
    ['1500', 1500],
    ['1w', 604_800_000],
  ])('%s → %d ms', (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });
  test.each(['', '5 days', '5x', 'h', '-5m', '5m garbage'])('rejects %j', (input) => {
    expect(parseDuration(input).ok).toBe(false);
  });
  test('formatDuration reads back to the same number', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 * 365 * 86_400_000 }), (n) => {
        expect(parseDuration(formatDuration(n))).toEqual({ ok: true, value: n });
      }),
    );
  });
});
