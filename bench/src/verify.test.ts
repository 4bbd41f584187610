import { expect, test } from 'vitest';
import { sampleMessage } from './verify.js';

test('a sample message is CRLF text of at least the size asked, with the lines relays get wrong', () => {
  const m = sampleMessage(3, 10_240).toString('latin1');
  expect(m.length).toBeGreaterThanOrEqual(10_240);
  expect(m).toMatch(/\r\n\.\r\n/);
  expect(m).toMatch(/\r\n\.a line/);
  expect(m).toContain(`${'x'.repeat(998)}\r\n`);
  expect(m.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  expect(sampleMessage(3, 100).equals(sampleMessage(3, 100))).toBe(false);
});
