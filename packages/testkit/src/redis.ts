import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { leftovers } from './exit-hook.js';
import { findOnPath } from './find-binary.js';
import { freePort } from './ports.js';

export interface RedisOptions {
  /** AOF persistence, default true: tests of crash recovery need it. */
  appendonly?: boolean;
  /** Default 'everysec' (Redis' own default); 'always' makes kill() lose nothing. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** e.g. '64mb'; unset means no limit. */
  maxmemory?: string;
  /** Default 'noeviction', what BullMQ requires. */
  maxmemoryPolicy?: string;
  /** Appended last, so they override the kit's own arguments. */
  extraArgs?: string[];
  /** How long to wait for the first PONG, default 10 s. */
  startTimeoutMs?: number;
}

/** A redis-server child process on 127.0.0.1, owned by the test that started it. */
export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** `redis://127.0.0.1:PORT`, for ioredis or BullMQ. */
  readonly url: string;
  /** PID of the current process; changes on restart(). */
  readonly pid: number;
  /** Working directory (AOF, logs); removed by stop(). */
  readonly dir: string;
  readonly running: boolean;
  /** Graceful shutdown (SIGTERM, AOF flushed), then removes the directory. Idempotent. */
  stop(): Promise<void>;
  /** Crash (SIGKILL). The directory stays, so restart() recovers from the AOF. */
  kill(): Promise<void>;
  /** Starts again on the same port and directory (stopping gracefully first if running). */
  restart(): Promise<void>;
  /** SIGSTOP: the port stays open but nothing answers, like a hung Redis. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

const HOST = '127.0.0.1';
const STOP_TIMEOUT_MS = 10_000;

export const REDIS_MISSING_MESSAGE =
  "redis-server not found on PATH: install the Debian package `redis-server` (`apt-get install -y redis-server`; the project's scripts/bootstrap.sh does it)";

/** Path of redis-server, or an Error telling how to install it. */
export function redisServerBinary(pathList: string = process.env.PATH ?? ''): string {
  const found = findOnPath('redis-server', pathList);
  if (!found) throw new Error(REDIS_MISSING_MESSAGE);
  return found;
}

export async function startRedis(opts: RedisOptions = {}): Promise<RedisServer> {
  const binary = redisServerBinary();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'moat-redis-'));
  const server = new LocalRedis(binary, await freePort(), dir, opts);
  try {
    await server.restart();
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

class LocalRedis implements RedisServer {
  readonly host = HOST;
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  readonly #binary: string;
  readonly #opts: RedisOptions;
  #child: ChildProcess | undefined;
  #paused = false;
  #removed = false;

  constructor(binary: string, port: number, dir: string, opts: RedisOptions) {
    this.#binary = binary;
    this.port = port;
    this.dir = dir;
    this.#opts = opts;
    this.url = `redis://${HOST}:${port}`;
    leftovers().dirs.add(dir);
  }

  get pid(): number {
    return this.#child?.pid ?? -1;
  }

  get running(): boolean {
    return this.#child !== undefined && isAlive(this.#child);
  }

  async stop(): Promise<void> {
    await this.#terminate('SIGTERM');
    if (this.#removed) return;
    this.#removed = true;
    leftovers().dirs.delete(this.dir);
    await rm(this.dir, { recursive: true, force: true });
  }

  async kill(): Promise<void> {
    await this.#terminate('SIGKILL');
  }

  async restart(): Promise<void> {
    if (this.#removed) throw new Error(`redis on port ${this.port} was stopped and its directory removed`);
    await this.#terminate('SIGTERM');
    const child = this.#spawn();
    try {
      await waitForPong(this.port, child, this.#opts.startTimeoutMs ?? 10_000, this.dir);
    } catch (err) {
      await this.#terminate('SIGKILL');
      throw err;
    }
  }

  pause(): void {
    this.#signal('SIGSTOP');
    this.#paused = true;
  }

  resume(): void {
    this.#signal('SIGCONT');
    this.#paused = false;
  }

  #spawn(): ChildProcess {
    // redis-server logs to its logfile; stderr only carries errors from before the log
    // is open (bad arguments). A file, not a pipe, so nothing holds the event loop open.
    const stderr = openSync(path.join(this.dir, 'stderr.log'), 'a');
    try {
      this.#child = spawn(this.#binary, redisArgs(this.port, this.dir, this.#opts), {
        stdio: ['ignore', 'ignore', stderr],
      });
    } finally {
      closeSync(stderr);
    }
    const child = this.#child;
    // An 'error' event without a listener would crash the test process; waitForPong reports it.
    child.on('error', () => {});
    // A forgotten server must not keep the test process alive: the exit hook kills it.
    child.unref();
    if (child.pid !== undefined) leftovers().pids.add(child.pid);
    child.once('exit', () => {
      if (child.pid !== undefined) leftovers().pids.delete(child.pid);
    });
    this.#paused = false;
    return child;
  }

  #signal(signal: NodeJS.Signals): void {
    const child = this.#child;
    if (!child?.pid || !isAlive(child)) throw new Error(`redis on port ${this.port} is not running`);
    process.kill(child.pid, signal);
  }

  /** Sends `signal` by PID and waits for the exit, escalating to SIGKILL after a timeout. */
  async #terminate(signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child?.pid || !isAlive(child)) return;
    // Keep the loop alive until the exit is seen, or a script could end in between.
    child.ref();
    const cancelTimer = new AbortController();
    try {
      const exit = exited(child);
      process.kill(child.pid, signal);
      // A stopped process only handles SIGTERM once it runs again.
      if (this.#paused) process.kill(child.pid, 'SIGCONT');
      const timeout = sleep(STOP_TIMEOUT_MS, 'timeout' as const, { signal: cancelTimer.signal }).catch(
        () => 'cancelled' as const,
      );
      if ((await Promise.race([exit, timeout])) === 'timeout') {
        process.kill(child.pid, 'SIGKILL');
        await exit;
      }
    } finally {
      cancelTimer.abort();
      child.unref();
      this.#paused = false;
    }
  }
}

/** redis-server's arguments for a kit server on `port` in `dir` (also the cluster fixture's nodes). */
export function redisArgs(port: number, dir: string, opts: RedisOptions): string[] {
  // biome-ignore format: flag/value pairs read best one pair per line
  const args = [
    '--port', String(port),
    '--bind', HOST,
    '--dir', dir,
    '--logfile', path.join(dir, 'redis.log'),
    '--daemonize', 'no',
    '--save', '', // no RDB snapshots: the AOF (if on) is the only persistence
    '--appendonly', opts.appendonly === false ? 'no' : 'yes',
    '--appendfsync', opts.appendfsync ?? 'everysec',
    '--maxmemory-policy', opts.maxmemoryPolicy ?? 'noeviction',
  ];
  if (opts.maxmemory !== undefined) args.push('--maxmemory', opts.maxmemory);
  return [...args, ...(opts.extraArgs ?? [])];
}

/** Polls PING until +PONG (a Redis replaying its AOF answers -LOADING meanwhile). */
export async function waitForPong(
  port: number,
  child: ChildProcess,
  timeoutMs: number,
  dir: string,
): Promise<void> {
  let spawnError: Error | undefined;
  child.once('error', (err) => {
    spawnError = err;
  });
  const deadline = Date.now() + timeoutMs;
  let last = 'no attempt';
  for (;;) {
    if (spawnError || !isAlive(child)) {
      const why = spawnError?.message ?? `exit code ${child.exitCode}, signal ${child.signalCode}`;
      throw new Error(`redis-server on port ${port} did not start (${why})\n${logTail(dir)}`);
    }
    last = await ping(port);
    if (last.startsWith('+PONG')) return;
    if (Date.now() > deadline) {
      throw new Error(
        `redis-server on port ${port} gave no PONG within ${timeoutMs} ms (last: ${last})\n${logTail(dir)}`,
      );
    }
    await sleep(50);
  }
}

/** One PING over a raw socket; resolves with the reply line or a description of the failure. */
function ping(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: HOST, port });
    let reply = '';
    const done = (result: string) => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(1000, () => done('timeout'));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.trim());
    });
    socket.on('error', (err) => done(err.message));
  });
}

function logTail(dir: string, lines = 20): string {
  const parts: string[] = [];
  for (const name of ['stderr.log', 'redis.log']) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8').trimEnd();
    if (text) parts.push(`--- ${file} (last ${lines} lines)\n${text.split('\n').slice(-lines).join('\n')}`);
  }
  return parts.join('\n') || '(no redis log)';
}

function isAlive(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

function exited(child: ChildProcess): Promise<void> {
  if (!isAlive(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
