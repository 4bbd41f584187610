import { describe, expect, test } from 'vitest';
import { editHeaders, encodeHeaderText } from './header-edits.js';

const msg = (head: string, body = 'body\r\n.line\r\n') => Buffer.from(`${head}\r\n${body}`, 'latin1');

describe('editHeaders', () => {
  test('no edit: the same buffer, not a copy', () => {
    const m = msg('Subject: hi\r\n');
    expect(editHeaders(m, { remove: null, subject: null })).toBe(m);
    expect(editHeaders(m, { remove: () => false, subject: null })).toBe(m);
  });

  test('removes every field the predicate names, folded lines included, and leaves the body', () => {
    const m = msg(
      'Authentication-Results: relay.example.com;\r\n spf=pass (forged)\r\nFrom: a@example.net\r\nAuthentication-Results: other.example; dkim=pass\r\nAUTHENTICATION-RESULTS: Relay.Example.COM 1; dmarc=pass\r\n',
      'Authentication-Results: relay.example.com; in the body stays\r\n',
    );
    const out = editHeaders(m, {
      remove: (name, value) => name === 'authentication-results' && /^relay\.example\.com\b/i.test(value),
      subject: null,
    });
    expect(out.toString('latin1')).toBe(
      'From: a@example.net\r\nAuthentication-Results: other.example; dkim=pass\r\n\r\nAuthentication-Results: relay.example.com; in the body stays\r\n',
    );
  });

  test('rewrites the first Subject (folded) and keeps the rest in place', () => {
    const m = msg('From: a@example.net\r\nSubject: buy\r\n now\r\nTo: b@example.com\r\n');
    expect(editHeaders(m, { remove: null, subject: '*** SPAM *** buy now' }).toString('latin1')).toBe(
      'From: a@example.net\r\nSubject: *** SPAM *** buy now\r\nTo: b@example.com\r\n\r\nbody\r\n.line\r\n',
    );
  });

  test('adds a Subject when there is none', () => {
    expect(
      editHeaders(msg('From: a@example.net\r\n'), { remove: null, subject: '[SPAM]' }).toString('latin1'),
    ).toBe('From: a@example.net\r\nSubject: [SPAM]\r\n\r\nbody\r\n.line\r\n');
  });

  test('a message without a body (no blank line) is edited as all header', () => {
    const m = Buffer.from('X-Spam-Flag: NO\r\nFrom: a@example.net\r\n');
    expect(editHeaders(m, { remove: (n) => n === 'x-spam-flag', subject: null }).toString()).toBe(
      'From: a@example.net\r\n',
    );
  });
});

describe('encodeHeaderText', () => {
  test.each([
    ['plain ASCII', 'plain ASCII'],
    ['two\r\nlines', 'two lines'],
    ['Grüße', '=?UTF-8?B?R3LDvMOfZQ==?='],
  ])('%j → %j', (text, encoded) => {
    expect(encodeHeaderText(text)).toBe(encoded);
  });

  test('long non-ASCII text becomes encoded words of at most 75 characters, whole characters each', () => {
    const text = `*** SPAM *** ${'Привет '.repeat(20)}`;
    const encoded = encodeHeaderText(text);
    const words = encoded.split('\r\n ');
    for (const w of words) expect(w.length).toBeLessThanOrEqual(75);
    const decoded = words.map((w) => Buffer.from(w.slice(10, -2), 'base64').toString('utf8')).join('');
    expect(decoded).toBe(text);
  });
});
