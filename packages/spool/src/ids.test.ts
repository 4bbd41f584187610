import { expect, test } from 'vitest';
import { messageIdTime, newMessageId } from './ids.js';

test('ids are unique, sortable by time, and carry their time', () => {
  const ids = Array.from({ length: 5000 }, (_, i) => newMessageId(1_800_000_000_000 + i));
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort()).toEqual(ids);
  expect(ids.every((id) => /^[0-9A-Z]{20}$/.test(id))).toBe(true);
  expect(messageIdTime(ids[42] ?? '')).toBe(1_800_000_000_042);
});
