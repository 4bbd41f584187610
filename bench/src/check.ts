/**
 * `--check`: the performance targets (issue 16) as met / not met, from one run's medians.
 * Every ratio is to Postfix in the same run; a target above 90 % of the `direct` ceiling of
 * the same run (smtp-source → smtp-sink, what this machine and these tools can do at all) is
 * lowered to that. Each figure is also shown as a share of `direct` and of the bare floor (and
 * of the BullMQ floor, `bare-bullmq-always`: the bare floor that also queues a BullMQ job, and
 * of the spool floor, `bare-spool-always`: the bare floor storing each message with Moat's spool).
 * The targets of `moat start` are also set against the relay floor (`bare-relay-always`: the
 * bare floor that also delivers, from a thread of its own), its accept and end-to-end rates.
 */
import { median } from './report.js';
import type { Measurement, SystemName } from './scenario.js';

const KB = 1024;

export interface TargetResult {
  readonly load: string;
  readonly what: string;
  /** The figure, as the target is written (a ratio to Postfix, ms, a share). */
  readonly value: number;
  readonly target: number;
  /** `min`: the figure must reach the target; `max`: it must stay at or under it. */
  readonly kind: 'min' | 'max';
  readonly met: boolean;
  readonly unit: string;
  /** What else to know: shares of direct and of the bare floor, a lowered target. */
  readonly note: string;
  /** The lowest and highest of the figure round by round (rounds paired in run order), when there were several. */
  readonly rounds: { readonly min: number; readonly max: number } | null;
}

type Rate = 'acceptRate' | 'endToEndRate';

/** The systems and loads `--check` runs (sizes in KB: 20 sessions, one message per connection). */
export const CHECK_SYSTEMS: readonly SystemName[] = [
  'direct',
  'postfix',
  'bare-always',
  'bare-bullmq-always',
  'bare-spool-always',
  'bare-relay-always',
  'moat-edge-always',
  'moat-start-always',
  'moat-split-always',
];
export const CHECK_SIZES_KB = [10, 100, 1024] as const;

const FLOORS: readonly (readonly [SystemName, string])[] = [
  ['bare-bullmq-always', 'BullMQ floor'],
  ['bare-spool-always', 'spool floor'],
];

const RATIO_TARGETS: Record<number, { accept: number; e2e: number }> = {
  1024: { accept: 1.3, e2e: 1.2 },
  100: { accept: 1.5, e2e: 1.5 },
  10: { accept: 1.8, e2e: 2.0 },
};

export function checkTargets(results: readonly Measurement[]): TargetResult[] {
  const out: TargetResult[] = [];
  for (const kb of CHECK_SIZES_KB) {
    const at = results.filter(
      (m) => m.load.size === kb * KB && m.load.sessions === 20 && m.load.perConnection === 1,
    );
    if (at.length === 0) continue;
    const load = `${kb >= 1024 ? `${kb / 1024} MB` : `${kb} KB`}`;
    // The figure of each round: the systems run in turn within a round, so the i-th measurement
    // of one system and the i-th of another come from the same round (NaN: not measured).
    const each = (system: SystemName, pick: (m: Measurement) => number | null | undefined) =>
      at.filter((m) => m.system === system).map((m) => pick(m) ?? Number.NaN);
    const med = (system: SystemName, pick: (m: Measurement) => number | null | undefined) => {
      const v = each(system, pick).filter((x) => !Number.isNaN(x));
      return v.length ? median(v) : Number.NaN;
    };
    const rate = (system: SystemName, which: Rate) => med(system, (m) => m[which]);
    const ratios = (a: readonly number[], b: readonly number[]) =>
      a.slice(0, b.length).map((x, i) => x / (b[i] as number));
    const shares = (value: number, which: Rate) => {
      const direct = rate('direct', which);
      const bare = rate('bare-always', 'acceptRate');
      const parts = [`${pct(value / direct)} of direct`];
      if (which === 'acceptRate') parts.push(`${pct(value / bare)} of the bare floor`);
      // The floors of an edge that also queues a BullMQ job, and of one that stores each
      // message as Moat's spool does (when they were run).
      for (const [floor, name] of FLOORS) {
        const at = rate(floor, 'acceptRate');
        if (which === 'acceptRate' && !Number.isNaN(at)) parts.push(`${pct(value / at)} of the ${name}`);
      }
      return parts.join(', ');
    };
    const ratio = (what: string, which: Rate, wanted: number) => {
      const moat = rate('moat-start-always', which);
      const postfix = rate('postfix', which);
      const ceiling = (0.9 * rate('direct', which)) / postfix;
      const target = Number.isNaN(ceiling) ? wanted : Math.min(wanted, ceiling);
      const lowered = target < wanted ? `; target lowered from ${wanted}× to 90 % of direct` : '';
      // What a relay on the same parts reaches, accepting and delivering on the same cores.
      const relay = rate('bare-relay-always', which);
      const floor = Number.isNaN(relay)
        ? ''
        : `; ${pct(moat / relay)} of the relay floor, which is ${(relay / postfix).toFixed(2)}× Postfix`;
      const rounds = ratios(
        each('moat-start-always', (m) => m[which]),
        each('postfix', (m) => m[which]),
      );
      out.push(
        result(
          load,
          what,
          moat / postfix,
          target,
          'min',
          '× Postfix',
          `${shares(moat, which)}${floor}${lowered}`,
          rounds,
        ),
      );
    };
    const wanted = RATIO_TARGETS[kb];
    if (wanted) {
      ratio('moat start, accept', 'acceptRate', wanted.accept);
      ratio('moat start, end to end', 'endToEndRate', wanted.e2e);
    }
    if (kb === 1024) {
      // The split layout runs the edge and the worker as two processes: their CPU apart.
      const mb = (kb * KB) / (1024 * 1024);
      for (const [i, role] of ['edge', 'worker'].entries()) {
        const pick = (m: Measurement) => m.ownCpuPer1000?.processes?.[i];
        const ms = med('moat-split-always', pick) / mb;
        const rounds = each('moat-split-always', pick).map((x) => x / mb);
        out.push(
          result(
            load,
            `${role} CPU per MB`,
            ms,
            5,
            'max',
            'ms',
            'moat-split-always, that process alone',
            rounds,
          ),
        );
      }
    }
    if (kb === 10) {
      const edge = rate('moat-edge-always', 'acceptRate');
      const bare = rate('bare-always', 'acceptRate');
      const spool = rate('bare-spool-always', 'acceptRate');
      const spoolShare = Number.isNaN(spool)
        ? ''
        : `; the spool floor itself is ${pct(spool / bare)} of the bare floor`;
      out.push(
        result(
          load,
          'moat edge against the bare floor',
          edge / bare,
          0.9,
          'min',
          'of bare',
          `${shares(edge, 'acceptRate')}${spoolShare}`,
          ratios(
            each('moat-edge-always', (m) => m.acceptRate),
            each('bare-always', (m) => m.acceptRate),
          ),
        ),
      );
      const p99 = med('moat-start-always', (m) => m.p99);
      out.push(
        result(
          load,
          'moat start, p99 DATA → 250',
          p99,
          20,
          'max',
          'ms',
          `Postfix ${med('postfix', (m) => m.p99).toFixed(1)} ms, bare floor ${med('bare-always', (m) => m.p99).toFixed(1)} ms`,
          each('moat-start-always', (m) => m.p99),
        ),
      );
    }
  }
  return out;
}

function result(
  load: string,
  what: string,
  value: number,
  target: number,
  kind: 'min' | 'max',
  unit: string,
  note: string,
  perRound: readonly number[] = [],
): TargetResult {
  const met = !Number.isNaN(value) && (kind === 'min' ? value >= target : value <= target);
  const known = perRound.filter((x) => !Number.isNaN(x));
  const rounds = known.length > 1 ? { min: Math.min(...known), max: Math.max(...known) } : null;
  return { load, what, value, target, kind, met, unit, note, rounds };
}

const pct = (x: number) => (Number.isNaN(x) ? '-' : `${Math.round(x * 100)} %`);

/** The check as a Markdown table, one target a row. */
export function formatCheck(rows: readonly TargetResult[]): string {
  const fmt = (x: number, unit: string) =>
    Number.isNaN(x) ? '-' : unit === 'of bare' ? pct(x) : `${x.toFixed(2)}${unit === 'ms' ? ' ms' : '×'}`;
  let out =
    '\n### Targets (--check)\n\n| load | figure | measured | rounds | target | | also |\n|---|---|---|---|---|---|---|\n';
  for (const r of rows) {
    const sign = r.kind === 'min' ? '≥' : '≤';
    const rounds = r.rounds ? `${fmt(r.rounds.min, r.unit)} – ${fmt(r.rounds.max, r.unit)}` : '-';
    out += `| ${r.load} | ${r.what} | ${fmt(r.value, r.unit)} | ${rounds} | ${sign} ${fmt(r.target, r.unit)} | ${r.met ? 'met' : 'not met'} | ${r.note} |\n`;
  }
  const met = rows.filter((r) => r.met).length;
  return `${out}\n${met} of ${rows.length} targets met.\n`;
}
