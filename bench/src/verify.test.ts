import { expect, test } from 'vitest';
import { sampleMessage, withoutFirstReceived } from './verify.js';

test('a sample message is CRLF text of at least the size asked, with the lines relays get wrong', () => {
  const m = sampleMessage(3, 10_240).toString('latin1');
  expect(m.length).toBeGreaterThanOrEqual(10_240);
  expect(m).toMatch(/\r\n\.\r\n/);
  expect(m).toMatch(/\r\n\.a line/);
  expect(m).toContain(`${'x'.repeat(998)}\r\n`);
  expect(m.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
  expect(sampleMessage(3, 100).equals(sampleMessage(3, 100))).toBe(false);
});

test('only the first header is taken off, and only when it is a Received: with its folded lines', () => {
  const body = Buffer.from('Subject: x\r\n\r\nhi\r\n', 'latin1');
  const received = Buffer.from(
    'Received: from a (b [127.0.0.1])\r\n\tby c with ESMTP id X;\r\n Sat, 28 Nov 2026\r\n',
  );
  expect(withoutFirstReceived(Buffer.concat([received, body])).equals(body)).toBe(true);
  expect(withoutFirstReceived(body).equals(body)).toBe(true);
  const two = Buffer.concat([received, received, body]);
  expect(withoutFirstReceived(two).equals(Buffer.concat([received, body]))).toBe(true);
});
