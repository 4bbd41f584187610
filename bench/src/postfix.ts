/**
 * Postfix pieces the harness uses: a private Postfix instance (its own config and queue
 * directories, no chroot, default queue durability) relaying to a host, Postfix's smtp-sink
 * as the receiving end with its message counter, and smtp-source as the load generator.
 */
import { execFile } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Proc, start, waitFor } from './procs.js';

const run = promisify(execFile);

export interface PostfixInstance {
  readonly port: number;
  readonly dir: string;
  /** PIDs of the master and its children (for CPU and RSS). */
  pids(): number[];
  stop(): Promise<void>;
}

/** `postfix -c DIR start` with everything under a fresh temp dir; stopped with `postfix -c DIR stop`. */
export async function startPostfix(
  port: number,
  relayhost: string,
  relayDomains: string,
): Promise<PostfixInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'moat-bench-postfix-'));
  chmodSync(dir, 0o755); // mkdtemp makes it 0700; Postfix's own processes must get in
  const conf = join(dir, 'conf');
  for (const d of ['conf', 'queue', 'data']) mkdirSync(join(dir, d));
  chownSync(join(dir, 'data'), uid('postfix'), -1);
  copyFileSync('/etc/postfix/dynamicmaps.cf', join(conf, 'dynamicmaps.cf'));
  const master = readFileSync('/etc/postfix/master.cf', 'utf8')
    .split('\n')
    .map((line) => {
      const f = line.split(/\s+/);
      if (line.startsWith('#') || /^\s/.test(line) || f.length < 8) return line;
      if (f[0] === 'smtp' && f[1] === 'inet') return `127.0.0.1:${port} inet n - n - - smtpd`;
      f[4] = 'n'; // no chroot: the instance has no chroot tree
      return f.join(' ');
    })
    .join('\n');
  writeFileSync(join(conf, 'master.cf'), master);
  writeFileSync(
    join(conf, 'main.cf'),
    `compatibility_level = 3.6
queue_directory = ${dir}/queue
data_directory = ${dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-bench.localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = ${relayDomains}
relayhost = ${relayhost}
smtp_host_lookup = native
disable_dns_lookups = yes
smtpd_peername_lookup = no
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = ${dir}/maillog
maillog_file_prefixes = ${dir}
default_process_limit = 200
`,
  );
  await run('postfix', ['-c', conf, 'start']);
  const pidOf = () => Number(readFileSync(join(dir, 'queue', 'pid', 'master.pid'), 'utf8').trim());
  await waitFor(() => {
    try {
      return pidOf() > 0;
    } catch {
      return false;
    }
  }, 'the Postfix master');
  return {
    port,
    dir,
    pids: () => processTree(pidOf()),
    async stop() {
      await run('postfix', ['-c', conf, 'stop']).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function uid(user: string): number {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  if (!line)
    throw new Error(`no user "${user}": install the Debian package postfix (scripts/bootstrap.sh --test)`);
  return Number(line.split(':')[2]);
}

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
  const proc = start('smtp-sink', ['-u', 'nobody', '-c', `127.0.0.1:${port}`, '1000']);
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
  const proc = start('smtp-source', [...args, `127.0.0.1:${opts.port}`]);
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
