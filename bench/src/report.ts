/** Medians of the rounds, as a Markdown table with ratios to Postfix. */
import type { Measurement } from './scenario.js';

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const loadName = (m: Measurement) =>
  `${m.load.size / 1024} KB, ${m.load.sessions} sessions, ${m.load.perConnection === 1 ? '1 msg/conn' : `${m.load.messages / m.load.sessions} msgs/conn`}`;

export function report(results: readonly Measurement[]): string {
  const byLoad = new Map<string, Measurement[]>();
  for (const m of results) byLoad.set(loadName(m), [...(byLoad.get(loadName(m)) ?? []), m]);
  let out = '';
  for (const [load, ms] of byLoad) {
    const systems = [...new Set(ms.map((m) => m.system))];
    const med = (system: string, pick: (m: Measurement) => number | null) => {
      const v = ms
        .filter((m) => m.system === system)
        .map(pick)
        .filter((x): x is number => x !== null);
      return v.length ? median(v) : Number.NaN;
    };
    const own = (system: string) => {
      const server = med(system, (m) => m.ownCpuPer1000?.server ?? null);
      const redis = med(system, (m) => m.ownCpuPer1000?.redis ?? null);
      const daemons = med(system, (m) => m.ownCpuPer1000?.daemons ?? null);
      const filters = Number.isNaN(daemons) ? '' : ` (+ ${daemons.toFixed(2)} filter daemons)`;
      return Number.isNaN(server) ? '-' : `${server.toFixed(2)} + ${redis.toFixed(2)}${filters}`;
    };
    const pfAccept = med('postfix', (m) => m.acceptRate);
    const pfE2e = med('postfix', (m) => m.endToEndRate);
    out += `\n### ${load} (median of ${ms.filter((m) => m.system === systems[0]).length})\n\n`;
    out +=
      '| system | accept msgs/s | × Postfix | end-to-end msgs/s | × Postfix | p50 ms | p99 ms | CPU s / 1000 msgs | own CPU ms/msg: server + Redis | peak RSS MB |\n';
    out += '|---|---|---|---|---|---|---|---|---|---|\n';
    for (const s of systems) {
      const accept = med(s, (m) => m.acceptRate);
      const e2e = med(s, (m) => m.endToEndRate);
      const fmt = (x: number, d = 0) => (Number.isNaN(x) ? '-' : x.toFixed(d));
      out += `| ${s} | ${fmt(accept)} | ${fmt(accept / pfAccept, 2)} | ${fmt(e2e)} | ${fmt(e2e / pfE2e, 2)} | ${fmt(
        med(s, (m) => m.p50),
        1,
      )} | ${fmt(
        med(s, (m) => m.p99),
        1,
      )} | ${fmt(
        med(s, (m) => m.cpuPer1000),
        2,
      )} | ${own(s)} | ${fmt(med(s, (m) => m.peakRss) / 1048576)} |\n`;
    }
  }
  return out;
}
