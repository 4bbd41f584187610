import { expect, test } from 'vitest';
import { composeReceived, rfc5322Date, withProtocol } from './received.js';

const date = new Date(Date.UTC(2026, 10, 28, 15, 4, 5));

test('rfc5322Date', () => {
  expect(rfc5322Date(date)).toBe('Sat, 28 Nov 2026 15:04:05 +0000');
});

test.each([
  [false, false, false, 'SMTP'],
  [true, false, false, 'ESMTP'],
  [true, true, false, 'ESMTPS'],
  [true, false, true, 'ESMTPA'],
  [true, true, true, 'ESMTPSA'],
])('protocol esmtp=%s tls=%s auth=%s → %s', (esmtp, tls, auth, keyword) => {
  expect(withProtocol(esmtp, tls, auth)).toBe(keyword);
});

test('Received: for an authenticated TLS submission with one recipient', () => {
  const header = composeReceived({
    helo: 'exchange.corp.example.com',
    clientHostname: null,
    clientIp: '::ffff:192.168.1.254',
    esmtp: true,
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', bits: 256 },
    user: 'exchange',
    by: 'relay.example.com',
    queueId: 'q1A2B3C',
    recipients: ['someone@example.net'],
    date,
  });
  expect(header).toBe(
    'Received: from exchange.corp.example.com (unknown [192.168.1.254])\r\n' +
      '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\r\n' +
      '\t(Authenticated sender: exchange)\r\n' +
      '\tby relay.example.com (Moat) with ESMTPSA id q1A2B3C\r\n' +
      '\tfor <someone@example.net>; Sat, 28 Nov 2026 15:04:05 +0000\r\n',
  );
});

test('Received: plain SMTP, IPv6, several recipients, hostile HELO', () => {
  const header = composeReceived({
    helo: 'evil)\r\nX-Injected: yes (',
    clientHostname: 'mx.example.org',
    clientIp: '2001:db8::25',
    esmtp: false,
    tls: null,
    user: null,
    by: 'relay.example.com',
    queueId: 'q9',
    recipients: ['a@example.com', 'b@example.com'],
    date,
  });
  expect(header).not.toContain('X-Injected: yes');
  expect(header.split('\r\n')).toHaveLength(4);
  expect(header).toContain('(mx.example.org [IPv6:2001:db8::25])');
  expect(header).toContain('with SMTP id q9\r\n\tSat, 28 Nov 2026');
  expect(header).not.toContain('for <');
});
