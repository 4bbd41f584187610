/**
 * The benchmark command. Runs each system under each load, alternating systems within every
 * round so machine drift cancels out, and prints medians and ratios to Postfix.
 *   node bench/dist/run.js [--quick | --check] [--rounds N] [--systems a,b] [--node label=PATH] [--out FILE]
 * --check runs the systems and loads of the performance targets and prints each as met / not
 * met (check.ts).
 * A Moat system named "moat-start-always@label" runs on the Node.js binary that --node label=PATH
 * names (repeatable), so two runtimes are measured in one run.
 * Everything runs on loopback and stops by itself.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CHECK_SIZES_KB, CHECK_SYSTEMS, checkTargets, formatCheck } from './check.js';
import { report } from './report.js';
import { type Load, type Measurement, measure, type SystemName } from './scenario.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean' },
    rounds: { type: 'string' },
    systems: { type: 'string' },
    messages: { type: 'string' },
    warmup: { type: 'string' },
    size: { type: 'string' },
    out: { type: 'string' },
    node: { type: 'string', multiple: true },
    check: { type: 'boolean' },
  },
});

const KB = 1024;
const ALL_SYSTEMS: SystemName[] = [
  'direct',
  'postfix',
  'moat-edge-always',
  'moat-start-always',
  'moat-start-everysec',
  'moat-split-always',
];
const systems =
  (values.systems?.split(',') as SystemName[] | undefined) ??
  (values.check ? [...CHECK_SYSTEMS] : ALL_SYSTEMS);
const rounds = Number(values.rounds ?? 3);
const nodes = new Map<string, string>();
for (const spec of values.node ?? []) {
  const at = spec.indexOf('=');
  if (at < 1) {
    process.stderr.write(`--node ${spec}: write label=PATH (e.g. node20=/usr/bin/node)\n`);
    process.exit(2);
  }
  nodes.set(spec.slice(0, at), spec.slice(at + 1));
}

// Each run is preceded by an unmeasured warm-up of warmupMessages (scenario.ts, measure).
const quickLoads: Load[] = [
  {
    size: 10 * KB,
    sessions: 20,
    perConnection: 1,
    messages: 2000,
    latencyMessages: 400,
    warmupMessages: 2000,
  },
];
const fullLoads: Load[] = [
  ...quickLoads,
  {
    size: 2 * KB,
    sessions: 20,
    perConnection: 1,
    messages: 2000,
    latencyMessages: 400,
    warmupMessages: 2000,
  },
  {
    size: 100 * KB,
    sessions: 20,
    perConnection: 1,
    messages: 1000,
    latencyMessages: 200,
    warmupMessages: 1000,
  },
  {
    size: 1024 * KB,
    sessions: 20,
    perConnection: 1,
    messages: 200,
    latencyMessages: 60,
    warmupMessages: 100,
  },
  {
    size: 10 * KB,
    sessions: 200,
    perConnection: 1,
    messages: 4000,
    latencyMessages: 400,
    warmupMessages: 2000,
  },
  {
    size: 10 * KB,
    sessions: 20,
    perConnection: 'all',
    messages: 1000,
    latencyMessages: 400,
    warmupMessages: 1000,
  },
];
// --check: the loads the targets are written for (20 sessions, one message per connection).
const checkLoads = fullLoads.filter(
  (load) =>
    load.sessions === 20 && load.perConnection === 1 && CHECK_SIZES_KB.some((kb) => load.size === kb * KB),
);
const loads = (values.check ? checkLoads : values.quick ? quickLoads : fullLoads)
  .filter((load) => values.size === undefined || load.size === Number(values.size) * KB)
  .map((load) => ({
    ...load,
    ...(values.messages ? { messages: Number(values.messages) } : {}),
    ...(values.warmup ? { warmupMessages: Number(values.warmup) } : {}),
  }));
if (loads.length === 0) {
  process.stderr.write(`no load has messages of ${values.size} KB${values.quick ? ' in --quick' : ''}\n`);
  process.exit(2);
}

const out =
  values.out ??
  join(
    resolve(import.meta.dirname, '..', 'results'),
    `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
  );
mkdirSync(resolve(out, '..'), { recursive: true });

// A run that fails (a system refused the load, a timeout) is reported and left out; the raw
// results are written after every measurement, so an interrupted run keeps what it measured.
const results: Measurement[] = [];
const failures: string[] = [];
for (const load of loads) {
  for (let round = 1; round <= rounds; round++) {
    for (const system of systems) {
      const what = `round ${round} ${system} ${load.size / KB}KB x${load.sessions} per-conn=${load.perConnection}`;
      try {
        const m = await measure(system, load, nodes);
        results.push(m);
        writeFileSync(out, JSON.stringify(results, null, 2));
        process.stderr.write(
          `${what}: accept ${m.acceptRate.toFixed(0)}/s, e2e ${m.endToEndRate?.toFixed(0) ?? '-'}/s, p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms${ownCpu(m)}${m.verified ? `, ${m.verified} sample messages identical` : ''}\n`,
        );
      } catch (err) {
        failures.push(`${what}: ${(err as Error).message.split('\n').slice(0, 3).join(' ')}`);
        process.stderr.write(`${what}: FAILED ${(err as Error).message}\n`);
      }
    }
  }
}
process.stdout.write(report(results));
if (values.check) process.stdout.write(formatCheck(checkTargets(results)));

function ownCpu(m: Measurement): string {
  const own = m.ownCpuPer1000;
  const daemons = own?.daemons !== undefined ? `, filter daemons ${own.daemons.toFixed(2)}` : '';
  return own ? `, CPU ms/msg: server ${own.server.toFixed(2)}, redis ${own.redis.toFixed(2)}${daemons}` : '';
}
if (failures.length > 0)
  process.stdout.write(`\nFailed runs (left out):\n${failures.map((f) => `- ${f}`).join('\n')}\n`);
process.stderr.write(`raw results: ${out}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
