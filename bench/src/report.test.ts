import { expect, test } from 'vitest';
import { median, report } from './report.js';
import type { Measurement } from './scenario.js';

test('median of odd and even counts', () => {
  expect(median([3, 1, 2])).toBe(2);
  expect(median([4, 1, 3, 2])).toBe(2.5);
  expect(median([])).toBeNaN();
});

test('report gives medians and ratios to Postfix', () => {
  const load = { size: 10240, sessions: 20, perConnection: 1 as const, messages: 100, latencyMessages: 10 };
  const m = (
    system: Measurement['system'],
    acceptRate: number,
    endToEndRate: number | null,
    ownCpuPer1000: Measurement['ownCpuPer1000'] = null,
  ): Measurement => ({
    system,
    load,
    acceptRate,
    endToEndRate,
    p50: 1,
    p99: 2,
    cpuPer1000: 0.5,
    peakRss: 100 * 1048576,
    ownCpuPer1000,
  });
  const text = report([
    m('postfix', 400, 350),
    m('postfix', 420, 360),
    m('postfix', 380, 340),
    m('moat-start-always', 1200, 1050, { server: 0.9, redis: 0.25 }),
    m('moat-start-always', 1000, 1000, { server: 1.3, redis: 0.35 }),
    m('moat-start-always', 1400, 1100, { server: 1.1, redis: 0.3 }),
  ]);
  expect(text).toContain('| postfix | 400 | 1.00 | 350 | 1.00 |');
  expect(text).toContain('| postfix | 400 | 1.00 | 350 | 1.00 | 1.0 | 2.0 | 0.50 | - | 100 |');
  expect(text).toContain(
    '| moat-start-always | 1200 | 3.00 | 1050 | 3.00 | 1.0 | 2.0 | 0.50 | 1.10 + 0.30 | 100 |',
  );
});
