import { expect, test } from 'vitest';
import { checkTargets, formatCheck } from './check.js';
import type { Measurement } from './scenario.js';

const KB = 1024;
const m = (
  system: Measurement['system'],
  kb: number,
  acceptRate: number,
  endToEndRate: number | null,
  extra: Partial<Measurement> = {},
): Measurement => ({
  system,
  load: { size: kb * KB, sessions: 20, perConnection: 1, messages: 100, latencyMessages: 10 },
  acceptRate,
  endToEndRate,
  p50: 1,
  p99: 10,
  cpuPer1000: 1,
  peakRss: 1,
  ownCpuPer1000: null,
  ...extra,
});

test('10 KB: ratios to Postfix, the edge against the bare floor, p99; shares of direct and bare', () => {
  const rows = checkTargets([
    m('direct', 10, 3000, 3000),
    m('postfix', 10, 400, 300),
    m('bare-always', 10, 1000, null),
    m('moat-edge-always', 10, 950, null),
    m('moat-start-always', 10, 700, 650, { p99: 25 }),
  ]);
  const by = (what: string) => rows.find((r) => r.what === what);
  expect(by('moat start, accept')).toMatchObject({ value: 1.75, target: 1.8, met: false });
  expect(by('moat start, accept')?.note).toBe('23 % of direct, 70 % of the bare floor');
  expect(by('moat start, end to end')).toMatchObject({ value: 650 / 300, target: 2, met: true });
  expect(by('moat edge against the bare floor')).toMatchObject({ value: 0.95, met: true });
  expect(by('moat start, p99 DATA → 250')).toMatchObject({ value: 25, target: 20, kind: 'max', met: false });
  const text = formatCheck(rows);
  // One round: no range of rounds.
  expect(text).toContain('| 10 KB | moat start, accept | 1.75× | - | ≥ 1.80× | not met |');
  expect(text).toContain('| 10 KB | moat edge against the bare floor | 95 % | - | ≥ 90 % | met |');
  expect(text).toContain('2 of 4 targets met.');
});

test('with the BullMQ floor in the run, accept figures show their share of it; p99 shows the bare floor', () => {
  const rows = checkTargets([
    m('direct', 10, 3000, 3000),
    m('postfix', 10, 400, 300, { p99: 80 }),
    m('bare-always', 10, 1000, null, { p99: 12 }),
    m('bare-bullmq-always', 10, 800, null),
    m('moat-edge-always', 10, 600, null),
    m('moat-start-always', 10, 700, 650, { p99: 25 }),
  ]);
  const by = (what: string) => rows.find((r) => r.what === what);
  expect(by('moat start, accept')?.note).toBe(
    '23 % of direct, 70 % of the bare floor, 88 % of the BullMQ floor',
  );
  expect(by('moat edge against the bare floor')?.note).toContain('75 % of the BullMQ floor');
  expect(by('moat start, end to end')?.note).toBe('22 % of direct');
  expect(by('moat start, p99 DATA → 250')?.note).toBe('Postfix 80.0 ms, bare floor 12.0 ms');
});

test("with the spool floor in the run, the edge's row shows its share of it and the floor's share of bare", () => {
  const rows = checkTargets([
    m('bare-always', 10, 1000, null),
    m('bare-spool-always', 10, 800, null),
    m('moat-edge-always', 10, 720, null),
  ]);
  const edge = rows.find((r) => r.what === 'moat edge against the bare floor');
  expect(edge?.value).toBeCloseTo(0.72);
  expect(edge?.note).toContain('72 % of the bare floor, 90 % of the spool floor');
  expect(edge?.note).toContain('the spool floor itself is 80 % of the bare floor');
  expect(edge?.note).not.toContain('BullMQ');
});

test("with the relay floor in the run, moat start's rows show their share of it and its ratio to Postfix", () => {
  const rows = checkTargets([
    m('postfix', 100, 400, 300),
    m('bare-relay-always', 100, 800, 600),
    m('moat-start-always', 100, 600, 480),
  ]);
  const by = (what: string) => rows.find((r) => r.what === what);
  expect(by('moat start, accept')?.note).toContain('75 % of the relay floor, which is 2.00× Postfix');
  expect(by('moat start, end to end')?.note).toContain('80 % of the relay floor, which is 2.00× Postfix');
});

test('several rounds: each figure also as the range of its rounds, the systems of one round paired', () => {
  // Round by round (run order): Postfix 400, 500, 450; moat start 700, 800, 900.
  const rows = checkTargets([
    m('postfix', 10, 400, 300),
    m('moat-start-always', 10, 700, 600, { p99: 30 }),
    m('bare-always', 10, 1000, null),
    m('moat-edge-always', 10, 700, null),
    m('postfix', 10, 500, 300),
    m('moat-start-always', 10, 800, 600, { p99: 12 }),
    m('bare-always', 10, 1000, null),
    m('moat-edge-always', 10, 950, null),
    m('postfix', 10, 450, 300),
    m('moat-start-always', 10, 900, 600, { p99: 18 }),
    m('bare-always', 10, 800, null),
    m('moat-edge-always', 10, 800, null),
  ]);
  const by = (what: string) => rows.find((r) => r.what === what);
  // Medians 800 / 450; round ratios 1.75, 1.6, 2.0.
  expect(by('moat start, accept')?.value).toBeCloseTo(800 / 450);
  expect(by('moat start, accept')?.rounds).toEqual({ min: 1.6, max: 2 });
  expect(by('moat edge against the bare floor')?.rounds).toEqual({ min: 0.7, max: 1 });
  expect(by('moat start, p99 DATA → 250')?.rounds).toEqual({ min: 12, max: 30 });
  const text = formatCheck(rows);
  expect(text).toContain('| 10 KB | moat start, accept | 1.78× | 1.60× – 2.00× | ≥ 1.80× | not met |');
  expect(text).toContain(
    '| 10 KB | moat start, p99 DATA → 250 | 18.00 ms | 12.00 ms – 30.00 ms | ≤ 20.00 ms | met |',
  );
});

test('1 MB: a target above 90 % of direct is lowered to it; edge and worker CPU per MB from the split layout', () => {
  const rows = checkTargets([
    m('direct', 1024, 100, 90),
    m('postfix', 1024, 80, 60),
    m('moat-start-always', 1024, 95, 70),
    m('moat-split-always', 1024, 90, 70, {
      ownCpuPer1000: { server: 16, redis: 3, processes: [4.5, 11.5] },
    }),
  ]);
  const accept = rows.find((r) => r.what === 'moat start, accept');
  // 1.3 × 80 = 104 is above 0.9 × 100 = 90: the target becomes 90 / 80 = 1.125.
  expect(accept?.target).toBeCloseTo(1.125);
  expect(accept?.met).toBe(true);
  expect(accept?.note).toContain('target lowered from 1.3× to 90 % of direct');
  expect(rows.find((r) => r.what === 'edge CPU per MB')).toMatchObject({ value: 4.5, met: true });
  expect(rows.find((r) => r.what === 'worker CPU per MB')).toMatchObject({ value: 11.5, met: false });
});

test('a load that was not run gives no rows; a missing figure is never met', () => {
  expect(checkTargets([m('postfix', 2, 1, 1)])).toEqual([]);
  const rows = checkTargets([m('postfix', 100, 400, 300)]);
  expect(rows.map((r) => r.met)).toEqual([false, false]);
});
