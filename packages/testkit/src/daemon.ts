/**
 * What the filtering-daemon fixtures (clamd, rspamd, spamd) share: finding a binary from a
 * Debian package, running it in the foreground as a child in its own process group, signals by
 * PID (stop, kill, pause, resume), a bounded wait for readiness whose error carries the log tail.
 *
 * rspamd and spamd fork workers. So each daemon gets its own process group (`detached`), and
 * kill(), pause() and resume() signal the whole group (`-pid`), so no worker keeps answering
 * while the main process is stopped, nor outlives a kill. The exit hook kills the group too.
 *
 * The exit hook only runs when the test process exits normally; vitest ends its fork workers
 * with SIGTERM, which skips it. So each daemon also gets a watchdog: a tiny `sh` loop, outside
 * the daemon's group, that ends the group (SIGTERM, then SIGKILL) once the test process is
 * gone, and ends itself when the group is gone.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { leftovers } from './exit-hook.js';
import { findOnPath } from './find-binary.js';

export const HOST = '127.0.0.1';
const STOP_TIMEOUT_MS = 10_000;

/** A daemon started by a fixture, on 127.0.0.1, owned by the test that started it. */
export interface FilterDaemon {
  readonly host: string;
  /** The port clients talk to. */
  readonly port: number;
  /** PID of the daemon's main process (also its process group); changes on restart(). */
  readonly pid: number;
  /** The fixture's own directory (config, logs); removed by stop(). */
  readonly dir: string;
  readonly running: boolean;
  /** Graceful shutdown (SIGTERM to the main process), then removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** Crash: SIGKILL to the whole process group. The directory stays, so restart() works. */
  kill(): Promise<void>;
  /** Starts again on the same port(s) and directory (stopping gracefully first if running). */
  restart(): Promise<void>;
  /** SIGSTOP to the process group: the port stays open but nothing answers, like a hung daemon. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** The last lines of the daemon's logs, for error messages. */
  logTail(lines?: number): string;
}

/**
 * Absolute path of a daemon's executable: PATH first, then /usr/sbin and /sbin (which a
 * non-root PATH often lacks). Throws an Error naming the Debian package when it is missing.
 */
export function daemonBinary(name: string, debianPackage: string, pathList = process.env.PATH ?? ''): string {
  const found = findOnPath(name, [pathList, '/usr/sbin', '/sbin'].join(path.delimiter));
  if (!found) throw new Error(missingMessage(name, debianPackage));
  return found;
}

export function missingMessage(name: string, debianPackage: string): string {
  return `${name} not found on PATH, /usr/sbin or /sbin: install the Debian package \`${debianPackage}\` (\`apt-get install -y ${debianPackage}\`; the project's scripts/bootstrap.sh --test does it)`;
}

/** uid and gid of a system user from /etc/passwd, or undefined when there is none. */
export function systemUser(name: string): { uid: number; gid: number } | undefined {
  let passwd: string;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of passwd.split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name && uid !== undefined && gid !== undefined)
      return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export interface DaemonSpec {
  /** For messages: "clamd", "rspamd", "spamd". */
  readonly name: string;
  readonly binary: string;
  readonly args: readonly string[];
  /** Where stderr.log goes. */
  readonly dir: string;
  /** Log files shown (last lines) in errors, besides stderr.log. */
  readonly logFiles: readonly string[];
  /** One readiness probe: true when ready, otherwise a description of what it got. */
  readonly probe: () => Promise<true | string>;
  readonly startTimeoutMs: number;
}

/**
 * A started daemon as a fixture hands it to a test: the FilterDaemon lifecycle over its
 * DaemonProcess (each fixture's handle adds its own facts: config file, URL, …). stop()
 * removes the fixture's directory once; restart() after it is refused.
 */
export class DaemonHandle implements FilterDaemon {
  readonly host = HOST;
  readonly port: number;
  readonly dir: string;
  readonly #daemon: DaemonProcess;
  readonly #name: string;
  readonly #start: () => Promise<void>;
  readonly #remove: () => Promise<void>;
  #removed = false;

  constructor(
    daemon: DaemonProcess,
    parts: {
      name: string;
      port: number;
      dir: string;
      remove: () => Promise<void>;
      start?: () => Promise<void>;
    },
  ) {
    this.#daemon = daemon;
    this.#name = parts.name;
    this.port = parts.port;
    this.dir = parts.dir;
    this.#remove = parts.remove;
    this.#start = parts.start ?? (() => daemon.start());
  }

  get pid(): number {
    return this.#daemon.pid;
  }

  get running(): boolean {
    return this.#daemon.running;
  }

  /** The first start: resolves with the handle once the daemon is ready; on failure stops it (directory removed). */
  async begin(): Promise<this> {
    try {
      await this.#start();
      return this;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await this.#daemon.terminate('SIGTERM');
    if (this.#removed) return;
    this.#removed = true;
    await this.#remove();
  }

  async kill(): Promise<void> {
    await this.#daemon.terminate('SIGKILL');
  }

  async restart(): Promise<void> {
    if (this.#removed)
      throw new Error(`${this.#name} on port ${this.port} was stopped and its directory removed`);
    await this.#daemon.terminate('SIGTERM');
    await this.#start();
  }

  pause(): void {
    this.#daemon.pause();
  }

  resume(): void {
    this.#daemon.resume();
  }

  logTail(lines?: number): string {
    return this.#daemon.logTail(lines);
  }
}

/** One daemon's child process, restartable. */
export class DaemonProcess {
  readonly #spec: DaemonSpec;
  #child: ChildProcess | undefined;
  #paused = false;

  constructor(spec: DaemonSpec) {
    this.#spec = spec;
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get running(): boolean {
    return this.#child !== undefined && isAlive(this.#child);
  }

  /** Spawns the daemon and waits until the probe answers; kills it if it does not in time. */
  async start(): Promise<void> {
    const child = this.#spawn();
    try {
      await this.#waitReady(child);
    } catch (err) {
      await this.terminate('SIGKILL');
      throw err;
    }
  }

  /** Returns once every thread of the group is stopped (see waitUntilStopped). */
  pause(): void {
    this.#signalGroup('SIGSTOP');
    this.#paused = true;
    waitUntilStopped(this.pid);
  }

  resume(): void {
    this.#signalGroup('SIGCONT');
    this.#paused = false;
  }

  /**
   * SIGTERM: to the main process, which shuts its workers down, then SIGKILL to whatever is
   * left of the group. SIGKILL: to the whole group at once. Waits for the exit, escalating to
   * SIGKILL after a timeout.
   */
  async terminate(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = this.#child;
    const pid = child?.pid;
    if (!child || pid === undefined) return;
    if (isAlive(child)) {
      // Keep the loop alive until the exit is seen, or a script could end in between.
      child.ref();
      const cancelTimer = new AbortController();
      try {
        const exit = exited(child);
        if (signal === 'SIGKILL') killGroup(pid, 'SIGKILL');
        else process.kill(pid, 'SIGTERM');
        // A stopped process only handles SIGTERM once it runs again.
        if (this.#paused) killGroup(pid, 'SIGCONT');
        const timeout = sleep(STOP_TIMEOUT_MS, 'timeout' as const, { signal: cancelTimer.signal }).catch(
          () => 'cancelled' as const,
        );
        if ((await Promise.race([exit, timeout])) === 'timeout') {
          killGroup(pid, 'SIGKILL');
          await exit;
        }
      } finally {
        cancelTimer.abort();
        child.unref();
      }
    }
    // Workers that outlived their main process (none should) go with it; wait until they are
    // gone, since a worker holding the inherited listening socket would block restart().
    if (groupMembers(pid).length > 0) killGroup(pid, 'SIGKILL');
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    while (groupMembers(pid).length > 0 && Date.now() < deadline) await sleep(20);
    leftovers().pids.delete(-pid);
    this.#paused = false;
  }

  logTail(lines = 30): string {
    const parts: string[] = [];
    for (const file of [path.join(this.#spec.dir, 'stderr.log'), ...this.#spec.logFiles]) {
      if (!existsSync(file)) continue;
      const text = readFileSync(file, 'utf8').trimEnd();
      if (text) parts.push(`--- ${file} (last ${lines} lines)\n${text.split('\n').slice(-lines).join('\n')}`);
    }
    return parts.join('\n') || `(no ${this.#spec.name} log)`;
  }

  #spawn(): ChildProcess {
    // A file, not a pipe, so nothing holds the event loop open or fills up.
    const stderr = openSync(path.join(this.#spec.dir, 'stderr.log'), 'a');
    try {
      this.#child = spawn(this.#spec.binary, this.#spec.args, {
        cwd: this.#spec.dir,
        detached: true, // its own process group: see the comment at the top
        stdio: ['ignore', stderr, stderr],
      });
    } finally {
      closeSync(stderr);
    }
    const child = this.#child;
    // An 'error' event without a listener would crash the test process; #waitReady reports it.
    child.on('error', () => {});
    // A forgotten daemon must not keep the test process alive: the exit hook kills its group.
    child.unref();
    const pid = child.pid;
    if (pid !== undefined) {
      leftovers().pids.add(-pid);
      startWatchdog(pid, this.#spec.dir);
    }
    this.#paused = false;
    return child;
  }

  async #waitReady(child: ChildProcess): Promise<void> {
    const { name, startTimeoutMs } = this.#spec;
    let spawnError: Error | undefined;
    child.once('error', (err) => {
      spawnError = err;
    });
    const deadline = Date.now() + startTimeoutMs;
    for (;;) {
      if (spawnError || !isAlive(child)) {
        const why = spawnError?.message ?? `exit code ${child.exitCode}, signal ${child.signalCode}`;
        throw new Error(`${name} did not start (${why})\n${this.logTail()}`);
      }
      const last = await this.#spec.probe();
      if (last === true) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${name} was not ready within ${startTimeoutMs} ms (last probe: ${last})\n${this.logTail()}`,
        );
      }
      await sleep(50);
    }
  }

  #signalGroup(signal: NodeJS.Signals): void {
    const child = this.#child;
    if (!child?.pid || !isAlive(child)) throw new Error(`${this.#spec.name} is not running`);
    process.kill(-child.pid, signal);
  }
}

/**
 * PIDs of the live (not zombie) processes in process group `pgid`, from /proc (Linux). Where
 * /proc cannot be read: [pgid] while the group can be signalled, else [].
 */
export function groupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const members: number[] = [];
  for (const name of entries) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') members.push(Number(name));
  }
  return members;
}

/**
 * `sh -c WATCHDOG sh <test process pid> <daemon pgid> <fixture dir>`: polls every second while
 * both exist; when the test process is gone, ends the daemon's group and removes the fixture's
 * directory. (dash: `kill -0 -PGID` tests a group.)
 */
const WATCHDOG = [
  'while kill -0 "$1" 2>/dev/null && kill -0 -"$2" 2>/dev/null; do sleep 1; done',
  'kill -0 "$1" 2>/dev/null && exit 0',
  'kill -TERM -"$2" 2>/dev/null && sleep 2 && kill -KILL -"$2" 2>/dev/null',
  'rm -rf -- "$3"',
].join('\n');

function startWatchdog(pgid: number, dir: string): void {
  try {
    const watchdog = spawn('/bin/sh', ['-c', WATCHDOG, 'sh', String(process.pid), String(pgid), dir], {
      detached: true,
      stdio: 'ignore',
    });
    watchdog.on('error', () => {});
    watchdog.unref();
  } catch {
    // no /bin/sh: the exit hook is all there is
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

function isAlive(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

function exited(child: ChildProcess): Promise<void> {
  if (!isAlive(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Opens a TCP connection (or one to the Unix socket `path`), writes `request`, collects the
 * reply until the server closes or `done(reply)` says it is complete, or `timeoutMs` passes.
 * Resolves with the reply (latin1 text), or with a description of the failure starting with
 * "error:" / "timeout"; never rejects.
 */
export function exchange(
  port: number,
  request: string | Buffer,
  opts: { timeoutMs?: number; done?: (reply: string) => boolean; host?: string; path?: string } = {},
): Promise<string> {
  return new Promise((resolve) => {
    // A Unix socket path, when given, stands in for host and port.
    const socket = net.connect(
      opts.path !== undefined ? { path: opts.path } : { host: opts.host ?? HOST, port },
    );
    let reply = '';
    let settled = false;
    const finish = (result: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(opts.timeoutMs ?? 2000, () => finish(`timeout (got ${JSON.stringify(reply)})`));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (opts.done?.(reply)) finish(reply);
    });
    socket.on('end', () => finish(reply));
    socket.on('error', (err) => finish(reply || `error: ${err.message}`));
  });
}

/**
 * Blocks until every thread of every process in group `pgid` is stopped (state T), at most
 * 2 s. kill(SIGSTOP) returns before that: one thread takes the signal and then stops the
 * others, and meanwhile a thread of slapd's (measured: in about half of the tries) still answers
 * a request sent right after pause(). Linux /proc; elsewhere it returns at once.
 */
function waitUntilStopped(pgid: number): void {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + 2000;
  while (Date.now() < deadline) {
    if (groupMembers(pgid).every(allThreadsStopped)) return;
    Atomics.wait(nap, 0, 0, 1);
  }
}

function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
    });
  } catch {
    return true; // gone, or no /proc
  }
}
