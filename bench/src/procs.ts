/**
 * Processes the harness starts, and what it reads of them from /proc: CPU time and peak RSS.
 * Everything it starts it stops, by PID.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  output(): string;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  exited(): Promise<number | null>;
}

/**
 * glibc's allocator setting Moat is deployed with (scripts/start.sh, the systemd unit, the
 * image): the harness gives it to Moat and to the bare floor, unless GLIBC_TUNABLES is set.
 */
export const GLIBC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912';

/**
 * The environment of a server under test (Moat, a bare floor): this one, with GLIBC_TUNABLES as
 * deployed; and with MOAT_BENCH_PROFILE=<dir>, Node.js options that make it write a V8 CPU
 * profile there when it stops (in NODE_OPTIONS, so they reach a `--node` wrapper's Node.js too).
 */
export function serverEnv(): NodeJS.ProcessEnv {
  const profile = process.env.MOAT_BENCH_PROFILE;
  const options = [
    process.env.NODE_OPTIONS,
    profile ? `--cpu-prof --cpu-prof-dir=${JSON.stringify(profile)}` : undefined,
  ];
  const nodeOptions = options.filter(Boolean).join(' ');
  return {
    ...process.env,
    GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? GLIBC_TUNABLES,
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
  };
}

export function start(command: string, args: readonly string[], options: SpawnOptions = {}): Proc {
  const child = spawn(command, [...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output = (output + d.toString('latin1')).slice(-200_000);
  });
  child.stderr?.on('data', (d: Buffer) => {
    output = (output + d.toString('latin1')).slice(-200_000);
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    pid: child.pid ?? -1,
    output: () => output,
    exited: () => exit,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** user+system CPU seconds of a process (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Whole-machine busy CPU seconds (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (
    ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) /
    TICKS_PER_SECOND
  );
}

/** Resident set size in bytes (0 when gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples the summed RSS of some processes every `everyMs`, keeping the peak. */
export class RssSampler {
  #peak = 0;
  #timer: NodeJS.Timeout;

  constructor(pids: () => readonly number[], everyMs = 100) {
    this.#timer = setInterval(() => {
      const total = pids().reduce((sum, pid) => sum + rssBytes(pid), 0);
      this.#peak = Math.max(this.#peak, total);
    }, everyMs);
  }

  stop(): number {
    clearInterval(this.#timer);
    return this.#peak;
  }
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  what: string,
  ms = 15_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
