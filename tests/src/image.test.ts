/**
 * The container image, built and run for real: no image registry is reachable here, so the
 * base is made from Debian's packages (mmdebstrap, with this machine's CA certificates so the
 * build can reach the npm registry through its TLS proxy), imported, and passed to the
 * Dockerfile as BASE; buildah builds it (chroot isolation: this VM's kernel lets podman's OCI
 * runtime set neither RLIMIT_NOFILE nor RLIMIT_NPROC, so `podman run` cannot start a container)
 * and `buildah run` starts the image's entrypoint: `moat edge` as the image's user, taking mail
 * from the host and stopping on SIGTERM.
 *
 * Needs root, buildah, podman and mmdebstrap (scripts/bootstrap.sh --test installs them), and
 * the network for Debian's and npm's packages; skipped, saying so, without them.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, RawSmtp, type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
const ready = process.getuid?.() === 0 && ['buildah', 'podman', 'mmdebstrap'].every(has);
const TAG = `localhost/moat:test-${process.pid}`;
const BASE = `localhost/moat-base:bookworm-${process.pid}`;
/** The Debian root is kept between runs on one machine (.moat is not in git). */
const ROOTFS = path.join(ROOT, '.moat/image/debian-bookworm-rootfs.tar');

let dir: string;
let redis: RedisServer;
let container = '';

beforeAll(async () => {
  if (!ready) return;
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-image-build-'));
  redis = await startRedis();
  if (!existsSync(ROOTFS)) {
    await run('mkdir', ['-p', path.dirname(ROOTFS)]);
    // What a run cut short left behind (mmdebstrap refuses a target that exists).
    await rm(`${ROOTFS}.tmp`, { recursive: true, force: true });
    const hooks = existsSync('/usr/local/share/ca-certificates')
      ? [
          '--customize-hook=copy-in /usr/local/share/ca-certificates /usr/local/share/',
          '--customize-hook=chroot "$1" update-ca-certificates',
        ]
      : [];
    await run(
      'mmdebstrap',
      // --format: mmdebstrap picks the format from the target's extension, and `.tmp` is none it
      // knows, so without it the root became a directory that `podman import` then refused.
      [
        '--variant=minbase',
        '--format=tar',
        '--include=ca-certificates,curl',
        ...hooks,
        'bookworm',
        `${ROOTFS}.tmp`,
      ],
      { timeout: 600_000, maxBuffer: 64 * 1024 * 1024 },
    );
    await run('mv', [`${ROOTFS}.tmp`, ROOTFS]);
  }
  await run('podman', ['import', ROOTFS, BASE], { timeout: 120_000 });
  await run(
    'buildah',
    [
      'bud',
      '--isolation',
      'chroot',
      '--format',
      'docker',
      '--build-arg',
      `BASE=${BASE}`,
      '-f',
      'infra/container/Dockerfile',
      '-t',
      TAG,
      '.',
    ],
    { cwd: ROOT, timeout: 900_000, maxBuffer: 64 * 1024 * 1024 },
  );
}, 1_800_000);

afterAll(async () => {
  if (!ready) return;
  // Only the working container this file made: other buildah containers on the machine are not ours.
  if (container) await run('buildah', ['rm', container]).catch(() => {});
  await run('podman', ['rmi', '-f', TAG, BASE]).catch(() => {});
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.skipIf(!ready)('the image: its user, its entrypoint, its health check and stop signal', async () => {
  const { stdout } = await run('buildah', ['inspect', '--type', 'image', TAG]);
  const config = JSON.parse(stdout).Docker.config as {
    User: string;
    Entrypoint: string[];
    Cmd: string[];
    Healthcheck: { Test: string[] };
    StopSignal: string;
  };
  expect(config.User).toBe('moat');
  expect(config.Entrypoint).toEqual(['node', '/opt/moat/bin/moat']);
  expect(config.Cmd).toEqual(['start']);
  expect(config.Healthcheck.Test).toEqual(['CMD', 'node', '/opt/moat/bin/healthcheck.mjs']);
  expect(config.StopSignal).toBe('SIGTERM');
});

test.skipIf(!ready)(
  'moat edge from the image takes mail from the host as uid 10025 and stops on SIGTERM with exit 0',
  async () => {
    const port = await freePort();
    const cfg = path.join(dir, 'cfg');
    await run('mkdir', ['-p', cfg]);
    await writeFile(
      path.join(cfg, 'moat.yaml'),
      JSON.stringify({
        hostname: 'image.test',
        redis: { url: redis.url, prefix: 'image' },
        smtp: { listen: [`127.0.0.1:${port}`] },
        inbound: { domains: { 'example.com': '[127.0.0.1]:9' } },
        admin: { listen: null },
      }),
    );
    await chmod(path.join(cfg, 'moat.yaml'), 0o644);
    const { stdout: ctr } = await run('buildah', ['from', '--isolation', 'chroot', TAG]);
    container = ctr.trim();
    // The image's entrypoint and the role as its argument, as `docker run moat edge --config …` does.
    const child: ChildProcess = spawn(
      'buildah',
      [
        'run',
        '--isolation',
        'chroot',
        '-v',
        `${cfg}:/etc/moat:ro`,
        ctr.trim(),
        '--',
        'node',
        '/opt/moat/bin/moat',
        'edge',
        '--config',
        '/etc/moat/moat.yaml',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!output.includes('"moat.ready"')) {
      if (Date.now() > deadline || child.exitCode !== null)
        throw new Error(`moat did not start in the image:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = await RawSmtp.connect({ port });
    await c.cmd('EHLO host.test');
    await c.cmd('MAIL FROM:<a@elsewhere.test>');
    await c.cmd('RCPT TO:<b@example.com>');
    expect(await c.data('Subject: from the image\r\n\r\nhello\r\n')).toMatch(/^250 2\.0\.0 Ok: queued as /);
    c.destroy();
    const moat = spawnSync('pgrep', ['-f', '-n', 'node /opt/moat/bin/moat edge'], {
      encoding: 'utf8',
    }).stdout.trim();
    expect(spawnSync('ps', ['-o', 'uid=', '-p', moat], { encoding: 'utf8' }).stdout.trim()).toBe('10025');
    process.kill(Number(moat), 'SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('"moat.stopped"');
  },
);
