import { describe, expect, test } from 'vitest';
import { composeDsn, type DsnInput, enhancedStatus, headerSection } from './dsn.js';

const original =
  'Received: from exchange.example.com (unknown [192.0.2.7])\r\n\tby relay.example.com (Moat) with ESMTP id q1\r\n' +
  'From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: Quarterly numbers\r\n' +
  'Message-ID: <orig-1@example.com>\r\n\r\nThe body, which a DSN never carries.\r\n';

const base: DsnInput = {
  action: 'failed',
  reportingMta: 'relay.example.com',
  to: 'alice@example.com',
  queueId: 'q1',
  arrivalDate: new Date(Date.UTC(2026, 10, 28, 15, 0, 0)),
  date: new Date(Date.UTC(2026, 10, 28, 15, 5, 0)),
  messageId: 'dsn-q1@relay.example.com',
  boundary: 'moat-boundary-1',
  recipients: [
    {
      recipient: 'bob@example.net',
      status: '5.1.1',
      remoteMta: 'mx1.example.net',
      diagnostic: { code: 550, text: '5.1.1 <bob@example.net>: Recipient address rejected: User unknown' },
    },
  ],
  originalHeaders: original,
};

/** The parts of a multipart body, split at the boundary: [preamble, ...parts]. */
function parts(message: string, boundary: string): string[] {
  const body = message.slice(message.indexOf('\r\n\r\n') + 4);
  const [, ...rest] = body.split(`\r\n--${boundary}`);
  expect(rest.at(-1)?.startsWith('--')).toBe(true);
  return rest.slice(0, -1).map((p) => p.replace(/^\r\n/, ''));
}

describe('enhancedStatus', () => {
  test.each([
    [550, '5.1.1 No such user', '5.1.1'],
    [550, '550 5.7.1 Relaying denied', '5.7.1'],
    [452, '4.5.3 Too many recipients', '4.5.3'],
    [550, 'No such user here', '5.0.0'],
    [421, 'Service not available', '4.0.0'],
    [550, '4.1.1 class does not match the code', '5.0.0'],
    [554, '5.7.1.2 not a status code', '5.0.0'],
    [0, 'connect ECONNREFUSED 127.0.0.1:25', '4.4.1'],
    [250, '2.0.0 Ok', '2.0.0'],
  ])('%i %j → %s', (code, text, status) => {
    expect(enhancedStatus(code, text)).toBe(status);
  });
});

describe('headerSection', () => {
  test('stops at the first empty line and ends in CRLF', () => {
    expect(headerSection('A: 1\nB: 2\n\nbody\n\nmore')).toBe('A: 1\r\nB: 2\r\n');
  });
  test('a message without a body is all headers', () => {
    expect(headerSection('A: 1\r\n')).toBe('A: 1\r\n');
  });
});

describe('composeDsn', () => {
  test('a failed recipient: multipart/report with the three RFC 3464 parts', () => {
    const dsn = composeDsn(base);
    expect(dsn).not.toMatch(/[^\r]\n/); // CRLF only
    const head = dsn.slice(0, dsn.indexOf('\r\n\r\n'));
    expect(head).toContain('From: Mail Delivery System <MAILER-DAEMON@relay.example.com>');
    expect(head).toContain('To: <alice@example.com>');
    expect(head).toContain('Subject: Undelivered Mail Returned to Sender');
    expect(head).toContain('Date: Sat, 28 Nov 2026 15:05:00 +0000');
    expect(head).toContain('Message-ID: <dsn-q1@relay.example.com>');
    expect(head).toContain('Auto-Submitted: auto-replied');
    expect(head).toMatch(
      /Content-Type: multipart\/report; report-type=delivery-status;\r\n\tboundary="moat-boundary-1"/,
    );

    const [human, status, headers] = parts(dsn, 'moat-boundary-1');
    expect(human).toContain('Content-Type: text/plain');
    expect(human).toContain(
      '<bob@example.net>: host mx1.example.net said: 550 5.1.1 <bob@example.net>: Recipient address rejected: User unknown',
    );
    expect(status).toContain('Content-Type: message/delivery-status\r\n\r\n');
    expect(status).toContain('Reporting-MTA: dns; relay.example.com\r\n');
    expect(status).toContain('Arrival-Date: Sat, 28 Nov 2026 15:00:00 +0000\r\n');
    expect(status).toContain(
      'Final-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx1.example.net\r\n',
    );
    // folded: no line of the status part is longer than 78 characters
    expect(status).toMatch(
      /Diagnostic-Code: smtp; 550 5\.1\.1 <bob@example\.net>: Recipient address\r\n\trejected/,
    );
    for (const line of status?.split('\r\n') ?? []) expect(line.length).toBeLessThanOrEqual(78);
    expect(headers).toContain('Content-Type: text/rfc822-headers');
    expect(headers).toContain('Subject: Quarterly numbers\r\nMessage-ID: <orig-1@example.com>\r\n');
    expect(headers).not.toContain('The body');
  });

  test('is deterministic: the same input gives the same text', () => {
    expect(composeDsn(base)).toBe(composeDsn({ ...base }));
  });

  test('several recipients, no remote host, an ENVID, and a multi-line reply on one line', () => {
    const dsn = composeDsn({
      ...base,
      envid: 'ENV-42',
      recipients: [
        { recipient: 'a@nomx.example', status: '5.1.10' },
        {
          recipient: 'b@example.net',
          status: '5.7.1',
          remoteMta: '192.0.2.9',
          diagnostic: { code: 554, text: '554-5.7.1 Rejected\n554 5.7.1 by policy' },
        },
      ],
    });
    const [, status] = parts(dsn, 'moat-boundary-1');
    expect(status).toContain('Original-Envelope-Id: ENV-42');
    expect(status).toContain(
      'Final-Recipient: rfc822; a@nomx.example\r\nAction: failed\r\nStatus: 5.1.10\r\n\r\n',
    );
    expect(status).toContain('Diagnostic-Code: smtp; 554-5.7.1 Rejected 5.7.1 by policy');
    expect(status?.match(/^Final-Recipient:/gm)).toHaveLength(2);
  });

  test('a delay warning says delayed, with Will-Retry-Until and a warning subject', () => {
    const dsn = composeDsn({
      ...base,
      action: 'delayed',
      willRetryUntil: new Date(Date.UTC(2026, 11, 3, 15, 0, 0)),
      recipients: [{ recipient: 'bob@example.net', status: '4.4.1' }],
    });
    expect(dsn).toContain('Subject: Delayed Mail (still being retried)');
    expect(dsn).toContain('THIS IS A WARNING ONLY');
    expect(dsn).toContain(
      'Action: delayed\r\nStatus: 4.4.1\r\nWill-Retry-Until: Thu, 3 Dec 2026 15:00:00 +0000',
    );
  });

  test('CR/LF in remote text cannot inject fields', () => {
    const dsn = composeDsn({
      ...base,
      recipients: [
        {
          recipient: 'bob@example.net',
          status: '5.0.0',
          diagnostic: { code: 550, text: 'no\r\nAction: delivered\r\nX: y' },
        },
      ],
    });
    expect(dsn).not.toMatch(/^Action: delivered/m);
  });

  test('8-bit original headers are marked 8bit', () => {
    const dsn = composeDsn({ ...base, originalHeaders: 'Subject: Grüße\r\n\r\nx' });
    expect(dsn).toContain(
      'Content-Type: text/rfc822-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: Grüße',
    );
  });
});
