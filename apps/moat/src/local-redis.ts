/**
 * The private Redis `moat start` runs when no redis.url is configured: data and a unix socket
 * under <dataDir>/redis, AOF on (fsync every second), noeviction. Stopped with Moat.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LocalRedis {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startLocalRedis(dataDir: string): Promise<LocalRedis> {
  const dir = resolve(dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  if (spawnSync('redis-server', ['--version']).error) {
    throw new Error(
      'redis-server is not installed: install the Debian package "redis-server" (scripts/bootstrap.sh does it), or set redis.url',
    );
  }
  const socket = join(dir, 'redis.sock');
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      '0',
      '--unixsocket',
      socket,
      '--unixsocketperm',
      '700',
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--maxmemory-policy',
      'noeviction',
      '--logfile',
      join(dir, 'redis.log'),
      '--daemonize',
      'no',
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const deadline = Date.now() + 10_000;
  while (!(await ping(socket))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the local redis-server did not start; its log says:\n${tail(join(dir, 'redis.log'))}`);
    }
    await sleep(50);
  }
  return {
    url: `unix://${socket}`,
    pid: child.pid ?? -1,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function ping(socket: string): Promise<boolean> {
  return new Promise((done) => {
    const conn = connect(socket);
    conn.once('error', () => done(false));
    conn.once('connect', () => conn.write('PING\r\n'));
    conn.once('data', (data) => {
      conn.destroy();
      done(data.toString().startsWith('+PONG'));
    });
  });
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-10).join('\n');
  } catch {
    return '(no log)';
  }
}
