import { expect, test } from 'vitest';
import { selectPartitions } from './partitions.js';

test('null selects every partition; numbers and ranges select those that exist', () => {
  expect(selectPartitions(null, 0)).toEqual([0]);
  expect(selectPartitions(null, 4)).toEqual([0, 1, 2, 3, 4]);
  expect(selectPartitions([0, '2-3'], 16)).toEqual([0, 2, 3]);
  expect(selectPartitions(['9-12', 3, 3], 10)).toEqual([3, 9, 10]);
  expect(selectPartitions([20], 16)).toEqual([]);
});
