import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { isPermanent, isTransient, queued, Replies, replyText } from './replies.js';

const doc = readFileSync(join(import.meta.dirname, '../../../docs/reply-codes.md'), 'utf8');

test.each(Object.entries(Replies))('%s is documented in docs/reply-codes.md as it is sent', (name, r) => {
  expect(doc).toContain(`| ${name} | ${r.code} | ${r.enhanced} | ${r.text} |`);
});

test('every reply has a class-consistent enhanced code', () => {
  for (const r of Object.values(Replies)) {
    expect(r.enhanced[0]).toBe(String(r.code)[0]);
    expect(r.enhanced).toMatch(/^[245]\.\d{1,3}\.\d{1,3}$/);
  }
});

test('queued and helpers', () => {
  expect(replyText(queued('AbC123'))).toBe('2.0.0 Ok: queued as AbC123');
  expect(isPermanent(Replies.relayDenied)).toBe(true);
  expect(isTransient(Replies.tempFailure)).toBe(true);
  expect(isTransient(Replies.relayDenied)).toBe(false);
});
