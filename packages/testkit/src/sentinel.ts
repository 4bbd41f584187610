/**
 * A Redis Sentinel on 127.0.0.1 watching one primary, for failover tests: `redis-server
 * <conf> --sentinel` (the same binary), its config in a temp dir it may rewrite, stopped by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { leftovers } from './exit-hook.js';
import { freePort } from './ports.js';
import { redisServerBinary, waitForPong } from './redis.js';

export interface SentinelOptions {
  /** The primary to watch, on 127.0.0.1. */
  readonly primaryPort: number;
  /** The master name clients ask for (default "mymaster"). */
  readonly name?: string;
  /** How long the primary may be silent before failover starts (default 1000 ms). */
  readonly downAfterMs?: number;
  /**
   * Sentinels that must agree the primary is down (default 1). With several Sentinels a failover
   * also needs a majority of them to elect a leader, whatever the quorum.
   */
  readonly quorum?: number;
}

export interface Sentinel {
  readonly port: number;
  readonly name: string;
  readonly pid: number;
  /** Its log file (removed by stop()): read it to see what a failover did. */
  readonly logFile: string;
  stop(): Promise<void>;
}

export async function startSentinel(opts: SentinelOptions): Promise<Sentinel> {
  const name = opts.name ?? 'mymaster';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'moat-sentinel-'));
  leftovers().dirs.add(dir);
  const port = await freePort();
  const conf = path.join(dir, 'sentinel.conf');
  const logFile = path.join(dir, 'redis.log');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `logfile ${logFile}`,
      `sentinel monitor ${name} 127.0.0.1 ${opts.primaryPort} ${opts.quorum ?? 1}`,
      `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
      `sentinel failover-timeout ${name} 10000`,
      `sentinel parallel-syncs ${name} 1`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(redisServerBinary(), [conf, '--sentinel'], { stdio: 'ignore' });
  const pid = child.pid ?? -1;
  leftovers().pids.add(pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    leftovers().pids.delete(pid);
    leftovers().dirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForPong(port, child, 10_000, dir);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, name, pid, logFile, stop };
}
