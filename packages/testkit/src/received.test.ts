import { expect, test } from 'vitest';
import { withoutFirstReceived } from './received.js';

test('only the first header is taken off, and only when it is a Received: with its folded lines', () => {
  const body = Buffer.from('Subject: x\r\n\r\nhi\r\n', 'latin1');
  const received = 'Received: from a (b [127.0.0.1])\r\n\tby c with ESMTP id X;\r\n Sat, 28 Nov 2026\r\n';
  const once = withoutFirstReceived(Buffer.concat([Buffer.from(received), body]));
  expect(once.received).toBe(received);
  expect(once.rest.equals(body)).toBe(true);
  expect(withoutFirstReceived(body)).toEqual({ received: '', rest: body });
  const two = withoutFirstReceived(Buffer.from(`${received}${received}Subject: x\r\n\r\nhi\r\n`));
  expect(two.rest.toString('latin1')).toBe(`${received}Subject: x\r\n\r\nhi\r\n`);
});
