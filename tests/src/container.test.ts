/**
 * The container image (infra/container/Dockerfile), as far as this machine allows: no image
 * registry is reachable and no Docker engine runs here, so the image's production tree is
 * made the way its build stage makes it (`pnpm --filter @moat/app deploy --prod`) and started
 * the way its entrypoint starts it (`node /opt/moat/bin/moat <role>`), as a user that is not
 * root, with the image's health check. The Dockerfile itself is checked for what the image
 * promises: two stages, production dependencies only, a non-root user, moat as entrypoint.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort, RawSmtp, type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const DOCKERFILE = path.join(ROOT, 'infra/container/Dockerfile');
/** The image's user is 10025; here any unprivileged one will do. */
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

let dir: string;
let tree: string;
let redis: RedisServer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-image-'));
  await chmod(dir, 0o755);
  tree = path.join(dir, 'opt-moat');
  await run('pnpm', ['--filter', '@moat/app', 'deploy', '--prod', tree], { cwd: ROOT, timeout: 120_000 });
  redis = await startRedis();
}, 150_000);
afterAll(async () => {
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the Dockerfile: two stages on one base, production tree only, non-root, moat as entrypoint, health check, SIGTERM', async () => {
  const text = await readFile(DOCKERFILE, 'utf8');
  expect(text.match(/^FROM /gm)).toHaveLength(2);
  expect(text).toMatch(/^ARG BASE=/m);
  expect(text).toContain('pnpm --filter @moat/app deploy --prod /opt/moat');
  expect(text).toContain('pnpm install --frozen-lockfile');
  expect(text).toMatch(/^USER moat$/m);
  expect(text).toMatch(/useradd --system --uid 10025/);
  expect(text).toMatch(/^ENTRYPOINT \["node", "\/opt\/moat\/bin\/moat"\]$/m);
  expect(text).toMatch(/^HEALTHCHECK .*\n\s+CMD \["node", "\/opt\/moat\/bin\/healthcheck\.mjs"\]$/m);
  expect(text).toMatch(/^STOPSIGNAL SIGTERM$/m);
  // The runtime stage copies only the deployed tree and the node binary from the build stage.
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  expect(runtime.match(/^COPY .*$/gm)).toEqual([
    'COPY --from=build /opt/node/bin/node /usr/local/bin/node',
    'COPY --from=build /opt/moat /opt/moat',
  ]);
});

test('the production tree holds built code and production dependencies only', async () => {
  const pkg = JSON.parse(await readFile(path.join(tree, 'package.json'), 'utf8'));
  expect(pkg.name).toBe('@moat/app');
  const { stdout } = await run('ls', [
    path.join(tree, 'node_modules'),
    path.join(tree, 'node_modules/@moat'),
  ]);
  for (const dev of ['vitest', 'typescript', '@moat/testkit', 'testkit', '@biomejs'])
    expect(stdout).not.toMatch(new RegExp(`^${dev}$`, 'm'));
  for (const runtime of ['edge', 'spool', 'filters', 'admin', 'delivery', 'policy'])
    expect(stdout).toMatch(new RegExp(`^${runtime}$`, 'm'));
  // Built code, not sources.
  await expect(readFile(path.join(tree, 'node_modules/@moat/edge/dist/index.js'))).resolves.toBeDefined();
  await expect(readFile(path.join(tree, 'node_modules/@moat/edge/src/index.ts'))).rejects.toMatchObject({
    code: 'ENOENT',
  });
});

test.skipIf(!asRoot)(
  'started as the image starts it, as a non-root user: takes mail, answers the health check, stops on SIGTERM with exit 0',
  async () => {
    const data = path.join(dir, 'data');
    await run('mkdir', ['-p', data]);
    await chown(data, NOBODY, NOBODY);
    const [smtp, admin] = [await freePort(), await freePort()];
    const config = path.join(dir, 'moat.yaml');
    await writeFile(
      config,
      JSON.stringify({
        hostname: 'image.test',
        dataDir: data,
        redis: { url: redis.url, prefix: 'image' },
        smtp: { listen: [`127.0.0.1:${smtp}`] },
        inbound: { domains: { 'example.com': '[127.0.0.1]:9' } },
        admin: { listen: `127.0.0.1:${admin}` },
        delivery: { thread: false },
      }),
    );
    await chmod(config, 0o644);
    const env = { PATH: `${path.dirname(process.execPath)}:/usr/bin:/bin`, NODE_ENV: 'production' };
    const child: ChildProcess = spawn(
      process.execPath,
      [path.join(tree, 'bin/moat'), 'start', '--config', config],
      {
        uid: NOBODY,
        gid: NOBODY,
        cwd: data,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      output += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const healthcheck = (target: string) =>
      run(process.execPath, [path.join(tree, 'bin/healthcheck.mjs')], {
        env: { ...env, MOAT_HEALTHCHECK: target },
        uid: NOBODY,
        gid: NOBODY,
      }).then(
        () => 0,
        (err: { code?: number }) => err.code ?? 1,
      );
    try {
      const deadline = Date.now() + 20_000;
      while (!output.includes('"moat.ready"')) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`moat did not start:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await healthcheck(`http://127.0.0.1:${admin}/health`)).toBe(0);
      expect(await healthcheck(`smtp://127.0.0.1:${smtp}`)).toBe(0);
      expect(await healthcheck('smtp://127.0.0.1:1')).toBe(1);
      const c = await RawSmtp.connect({ port: smtp });
      await c.cmd('EHLO client.test');
      await c.cmd('MAIL FROM:<a@elsewhere.test>');
      await c.cmd('RCPT TO:<b@example.com>');
      expect(await c.data('Subject: from the image\r\n\r\nhello\r\n')).toMatch(/^250 2\.0\.0 Ok: queued as /);
      c.destroy();
      const { stdout } = await run('ps', ['-o', 'user=', '-p', String(child.pid)]);
      expect(stdout.trim()).toBe('nobody');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(output).toContain('"moat.stopped"');
  },
);
