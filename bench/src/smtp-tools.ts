/**
 * Postfix's tools the harness uses: smtp-sink as the receiving end with its message counter,
 * smtp-source as the load generator; and the process tree of a running system, for its RSS.
 * (The private Postfix instance itself is @moat/testkit's startPostfix.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { daemonBinary } from '@moat/testkit';
import { type Proc, start, waitFor } from './procs.js';

/** A process and all its descendants, from /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirNumeric('/proc')) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), entry]);
    } catch {}
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) walk(c);
  };
  walk(root);
  return out;
}

function readdirNumeric(dir: string): number[] {
  return readdirSync(dir)
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

export interface Sink {
  readonly port: number;
  readonly proc: Proc;
  /** Messages received so far. */
  count(): number;
  waitForCount(n: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

/** Postfix's smtp-sink on 127.0.0.1:port, counting messages. */
export async function startSink(port: number): Promise<Sink> {
  const proc = start(daemonBinary('smtp-sink', 'postfix'), [
    '-u',
    'nobody',
    '-c',
    `127.0.0.1:${port}`,
    '1000',
  ]);
  const count = () => {
    const m = /mesg=(\d+)\r?[^\r]*$/.exec(proc.output().slice(-200));
    return m ? Number(m[1]) : 0;
  };
  await waitFor(() => portOpen(port), 'smtp-sink to listen');
  return {
    port,
    proc,
    count,
    async waitForCount(n, timeoutMs) {
      await waitFor(() => count() >= n, `the sink to count ${n} messages (it has ${count()})`, timeoutMs);
      return count();
    },
    stop: () => proc.stop(),
  };
}

export interface SourceRun {
  readonly seconds: number;
  readonly ok: boolean;
  readonly output: string;
}

/** smtp-source: `messages` messages of `size` bytes over `sessions` parallel sessions. */
export async function runSource(opts: {
  port: number;
  messages: number;
  sessions: number;
  size: number;
  perConnection: 1 | 'all';
  to: string;
  timeoutMs: number;
}): Promise<SourceRun> {
  const args = [
    '-s',
    String(opts.sessions),
    '-l',
    String(opts.size),
    '-m',
    String(opts.messages),
    '-f',
    'bench@example.net',
    '-t',
    opts.to,
    '-M',
    'bench.example.net',
  ];
  if (opts.perConnection === 'all') args.unshift('-d');
  const started = performance.now();
  const proc = start(daemonBinary('smtp-source', 'postfix'), [...args, `127.0.0.1:${opts.port}`]);
  const timer = setTimeout(() => void proc.stop('SIGKILL'), opts.timeoutMs);
  const code = await proc.exited();
  clearTimeout(timer);
  return { seconds: (performance.now() - started) / 1000, ok: code === 0, output: proc.output() };
}

export function portOpen(port: number): Promise<boolean> {
  return import('node:net').then(
    ({ connect }) =>
      new Promise((resolve) => {
        const s = connect(port, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
  );
}
