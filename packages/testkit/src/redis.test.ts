import { existsSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { REDIS_MISSING_MESSAGE, type RedisServer, redisServerBinary, startRedis } from './redis.js';

/** True while a process with this PID exists (signal 0 only checks). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startRedis', () => {
  const started: RedisServer[] = [];
  const clients: Redis[] = [];
  const start = async (opts?: Parameters<typeof startRedis>[0]) => {
    const server = await startRedis(opts);
    started.push(server);
    return server;
  };
  const connect = (server: RedisServer, options: { commandTimeout?: number } = {}) => {
    const client = new Redis(server.url, { maxRetriesPerRequest: 1, ...options });
    clients.push(client);
    return client;
  };

  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(started.splice(0).map((server) => server.stop()));
  });

  it('serves SET/GET on a loopback port that is not 6379', async () => {
    const server = await start();
    expect(server.host).toBe('127.0.0.1');
    expect(server.port).not.toBe(6379);
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`);
    const client = connect(server);
    await client.set('greeting', 'hello');
    expect(await client.get('greeting')).toBe('hello');
  });

  it('applies the defaults and the options', async () => {
    const server = await start({ maxmemory: '32mb', extraArgs: ['--databases', '4'] });
    const client = connect(server);
    expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    expect(await client.config('GET', 'maxmemory')).toEqual(['maxmemory', String(32 * 1024 * 1024)]);
    expect(await client.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
    expect(await client.config('GET', 'save')).toEqual(['save', '']);
    expect(await client.config('GET', 'databases')).toEqual(['databases', '4']);
    expect(await client.config('GET', 'dir')).toEqual(['dir', server.dir]);
  });

  it('keeps data written with appendfsync always across kill and restart', async () => {
    const server = await start({ appendfsync: 'always' });
    const before = server.pid;
    await connect(server).set('survivor', 'yes');
    await server.kill();
    expect(alive(before)).toBe(false);
    expect(existsSync(server.dir)).toBe(true);

    await server.restart();
    expect(server.pid).not.toBe(before);
    expect(await connect(server).get('survivor')).toBe('yes');
  });

  it('stop ends the process by PID and removes its directory', async () => {
    const server = await start();
    const pid = server.pid;
    expect(alive(pid)).toBe(true);
    await server.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(server.running).toBe(false);
    expect(existsSync(server.dir)).toBe(false);
    await server.stop(); // idempotent
    await expect(server.restart()).rejects.toThrow(/stopped/);
  });

  it('pause makes commands hang until resume', async () => {
    const server = await start();
    const client = connect(server, { commandTimeout: 300 });
    await client.ping();
    server.pause();
    await expect(client.ping()).rejects.toThrow(/timed out/i);
    server.resume();
    expect(await client.ping()).toBe('PONG');
  });

  it('stop works on a paused server', async () => {
    const server = await start();
    server.pause();
    await server.stop();
    expect(server.running).toBe(false);
  });

  it('reports a server that cannot start, with its log', async () => {
    await expect(start({ extraArgs: ['--no-such-option', 'x'] })).rejects.toThrow(
      /did not start[\s\S]*no-such-option/i,
    );
  });

  it('says how to install redis-server when it is not on PATH', () => {
    expect(() => redisServerBinary('/nonexistent')).toThrow(REDIS_MISSING_MESSAGE);
    expect(REDIS_MISSING_MESSAGE).toContain('apt-get install -y redis-server');
  });
});
