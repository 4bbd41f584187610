import { describe, expect, test } from 'vitest';
import { classifyReply, delayWarningDue, nextRetry } from './retry.js';

describe('classifyReply: real remote replies', () => {
  test.each([
    [250, '2.0.0 Ok: queued as 4F2C31A0', 'delivered'],
    [251, 'User not local; will forward', 'delivered'],
    [421, '4.7.0 mx.google.com Try again later, closing connection.', 'deferred'],
    [
      450,
      '4.2.0 <a@b.c>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/',
      'deferred',
    ],
    [451, '4.3.0 Temporary lookup failure', 'deferred'],
    [452, '4.5.3 Too many recipients', 'deferred'],
    [552, '5.5.3 Too many recipients', 'deferred'],
    [550, '5.7.1 Greylisted, please try again in 300 seconds', 'deferred'],
    [0, 'connect ECONNREFUSED 127.0.0.1:25', 'deferred'],
    [
      550,
      '5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table',
      'failed',
    ],
    [554, '5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org', 'failed'],
    [552, '5.3.4 Message size exceeds fixed maximum message size', 'failed'],
    [553, '5.1.3 Bad recipient address syntax', 'failed'],
  ])('%d %s → %s', (code, text, outcome) => {
    expect(classifyReply({ code, text }).outcome).toBe(outcome);
  });
});

describe('nextRetry', () => {
  const min = 60_000;
  const schedule = [5 * min, 10 * min, 20 * min];
  const base = { queuedAt: 0, schedule, lifetime: 5 * 86_400_000 };

  test.each([
    [1, 5 * min],
    [2, 10 * min],
    [3, 20 * min],
    [4, 20 * min],
    [40, 20 * min],
  ])('after attempt %d waits %d ms', (attemptsMade, delayMs) => {
    expect(nextRetry({ ...base, attemptsMade, now: 60_000 })).toEqual({ action: 'retry', delayMs });
  });

  test('never schedules past the end of the lifetime', () => {
    const now = base.lifetime - 2 * min;
    expect(nextRetry({ ...base, attemptsMade: 9, now })).toEqual({ action: 'retry', delayMs: 2 * min });
  });

  test('expires once the lifetime has passed', () => {
    expect(nextRetry({ ...base, attemptsMade: 9, now: base.lifetime })).toEqual({ action: 'expire' });
  });
});

test('delayWarningDue', () => {
  expect(delayWarningDue(0, 4 * 3_600_000, 4 * 3_600_000, false)).toBe(true);
  expect(delayWarningDue(0, 4 * 3_600_000, 4 * 3_600_000, true)).toBe(false);
  expect(delayWarningDue(0, 3_600_000, 4 * 3_600_000, false)).toBe(false);
  expect(delayWarningDue(0, 10 * 3_600_000, null, false)).toBe(false);
});
