import { expect, test } from 'vitest';
import { messageIdTime, newMessageId, partitionOfId } from './ids.js';

test('ids are unique, sortable by time, and carry their time', () => {
  const ids = Array.from({ length: 5000 }, (_, i) => newMessageId(1_800_000_000_000 + i));
  expect(new Set(ids).size).toBe(ids.length);
  expect([...ids].sort()).toEqual(ids);
  expect(ids.every((id) => /^[0-9A-Z]{20}$/.test(id))).toBe(true);
  expect(messageIdTime(ids[42] ?? '')).toBe(1_800_000_000_042);
});

test('an id names its partition; one without a partition is in partition 0', () => {
  const id = newMessageId(1_800_000_000_000, 7);
  expect(id).toMatch(/^[0-9A-Z]{20}p7$/);
  expect(partitionOfId(id)).toBe(7);
  expect(messageIdTime(id)).toBe(1_800_000_000_000);
  expect(partitionOfId(newMessageId())).toBe(0);
  expect(partitionOfId(newMessageId(Date.now(), 0))).toBe(0);
  expect(partitionOfId('0MB3K2L1ABCDEF12345p0')).toBe(0);
  expect(partitionOfId('0MB3K2L1ABCDEF12345p99999')).toBe(0);
  expect(partitionOfId('garbage')).toBe(0);
});
