/**
 * The files in infra/ are what operators copy, so they are tested like code: the example
 * config passes `moat config check` (and prints no secret), the Redis config starts a real
 * redis-server with the durability and eviction settings Moat needs, and the systemd unit
 * template passes `systemd-analyze verify` without a single warning.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseDuration } from '@moat/policy';
import { assertNoEviction, connect, memoryInfo, whenReady } from '@moat/spool';
import { freePort } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { runMoat } from './moat-process.js';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const INFRA = path.join(ROOT, 'infra');
const BIN = path.join(ROOT, 'apps/moat/bin/moat');

const SECRETS = {
  MOAT_REDIS_PASSWORD: 'redis-password-that-must-not-show',
  MOAT_ADMIN_TOKEN: 'admin-token-that-must-not-show-0123',
  MOAT_READ_TOKEN: 'read-token-that-must-not-show-01234',
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-infra-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('infra/moat.example.yaml passes `moat config check`, secrets masked', async () => {
  const result = await runMoat(
    ['config', 'check', '--config', path.join(INFRA, 'moat.example.yaml')],
    SECRETS,
  );
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/moat\.example\.yaml: valid/);
  for (const secret of Object.values(SECRETS)) expect(result.stdout).not.toContain(secret);
  // It is production-shaped: a non-loopback admin API with TLS, a shared Redis, a real certificate.
  expect(result.stdout).toMatch(/admin:\n {2}listen:\n {4}host: 10\.0\.0\.21/);
  expect(result.stdout).toMatch(/url: redis:\/\/\*+@10\.0\.0\.9:6379\/0/);
});

test('without its secrets the example config is refused with exit 2, naming the key', async () => {
  const { MOAT_ADMIN_TOKEN: _, ...partial } = SECRETS;
  const result = await runMoat(
    ['config', 'check', '--config', path.join(INFRA, 'moat.example.yaml')],
    partial,
  );
  expect(result.code).toBe(2);
  expect(result.stderr).toContain('admin.tokens[0].token: refers to ${MOAT_ADMIN_TOKEN}');
});

test('infra/redis/redis.conf starts redis-server with AOF, fsync always, noeviction and a maxmemory', async () => {
  const port = await freePort();
  // The file as it is; only where it listens and writes is overridden (later options win).
  const child: ChildProcess = spawn(
    'redis-server',
    [path.join(INFRA, 'redis/redis.conf'), '--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const redis = connect({ url: `redis://127.0.0.1:${port}` }, 'producer');
  try {
    await whenReady(redis, 10_000).catch((err: unknown) => {
      throw new Error(`redis-server did not start with infra/redis/redis.conf: ${String(err)}\n${output}`);
    });
    const get = async (key: string) => ((await redis.config('GET', key)) as string[])[1];
    expect(await get('appendonly')).toBe('yes');
    expect(await get('appendfsync')).toBe('always');
    expect(await get('maxmemory-policy')).toBe('noeviction');
    expect(Number(await get('maxmemory'))).toBeGreaterThan(0);
    expect(await get('protected-mode')).toBe('yes');
    // What the edge checks before it takes mail, and what back-pressure needs.
    await expect(assertNoEviction(redis)).resolves.toBeUndefined();
    expect((await memoryInfo(redis)).max).toBe(2 * 1024 ** 3);
    // The unmodified file binds loopback only.
    const text = await readFile(path.join(INFRA, 'redis/redis.conf'), 'utf8');
    expect(text).toMatch(/^bind 127\.0\.0\.1 -::1$/m);
  } finally {
    redis.disconnect();
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
    await exited;
  }
});

test('infra/systemd/moat@.service passes systemd-analyze verify with no warning', async () => {
  const template = await readFile(path.join(INFRA, 'systemd/moat@.service'), 'utf8');
  const exec = '/opt/moat/apps/moat/bin/moat %i --config /etc/moat/moat.yaml';
  expect(template).toContain(`ExecStart=${exec}\n`);
  expect(template).toMatch(/^Restart=always$/m);
  // systemctl reload checks the config, then signals the running process.
  expect(template).toMatch(
    /^ExecReload=\/opt\/moat\/apps\/moat\/bin\/moat reload --pid \$MAINPID --config \/etc\/moat\/moat\.yaml$/m,
  );
  expect(template).toMatch(/^KillSignal=SIGTERM$/m);
  // Long enough for `moat start`: workers' 30 s and the edge's 30 s DATA grace, one after the other.
  const stop = /^TimeoutStopSec=(\S+)$/m.exec(template)?.[1] ?? '0';
  const stopMs = parseDuration(stop);
  expect(stopMs.ok && stopMs.value).toBeGreaterThanOrEqual(70_000);

  // verify checks that ExecStart is executable: point a copy at this checkout's moat.
  for (const role of ['edge', 'worker', 'admin']) {
    const unit = path.join(dir, `moat@${role}.service`);
    await writeFile(unit, template.replaceAll('/opt/moat/apps/moat/bin/moat', BIN));
    const { stdout, stderr } = await run('systemd-analyze', ['verify', unit], { timeout: 20_000 });
    expect(`${stdout}${stderr}`, role).toBe('');
  }
  // And it does complain when something is wrong.
  const broken = path.join(dir, 'moat@broken.service');
  await copyFile(path.join(dir, 'moat@edge.service'), broken);
  await writeFile(broken, (await readFile(broken, 'utf8')).replace('KillMode=mixed', 'KillMode=sometimes'));
  const { stderr } = await run('systemd-analyze', ['verify', broken], { timeout: 20_000 });
  expect(stderr).toContain('kill mode');
});

test("glibc's allocator setting is in every way Moat is started, the same in each", async () => {
  // The value scripts/start.sh exports; the unit, the image and the benchmark harness must
  // carry it too (docs/operations.md: 0.7 ms of the edge's CPU per 1 MB message without it).
  const places = {
    'scripts/start.sh': /GLIBC_TUNABLES="\$\{GLIBC_TUNABLES:-([^}"]+)\}"/,
    'infra/systemd/moat@.service': /^Environment=GLIBC_TUNABLES=(\S+)$/m,
    'infra/container/Dockerfile': /^ENV GLIBC_TUNABLES=(\S+)$/m,
    'bench/src/procs.ts': /export const GLIBC_TUNABLES = '([^']+)';/,
  };
  const values = await Promise.all(
    Object.entries(places).map(async ([file, pattern]) => [
      file,
      pattern.exec(await readFile(path.join(ROOT, file), 'utf8'))?.[1] ?? '(missing)',
    ]),
  );
  const expected = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912';
  expect(Object.fromEntries(values)).toEqual(
    Object.fromEntries(Object.keys(places).map((file) => [file, expected])),
  );
});
