/**
 * First contact: `moat start` with the embedded config makes an admin token once, keeps it
 * 0600 under dataDir, says where it is, and the API takes it; a config with tokens of its own
 * is left alone. The real command runs, with the embedded config's keys moved to a temporary
 * data directory, the test's Redis and free ports by MOAT_* overrides.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '@moat/policy';
import { freePort, type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findLocalToken, localAdminToken, withLocalToken } from './local-token.js';

const bin = join(import.meta.dirname, '..', 'bin', 'moat');
const dir = mkdtempSync(join(tmpdir(), 'moat-token-'));
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('localAdminToken', () => {
  test('made once, 0600, at least 32 characters; the same one afterwards', () => {
    const data = join(dir, 'unit');
    const first = localAdminToken(data);
    expect(first.created).toBe(true);
    expect(first.token.length).toBeGreaterThanOrEqual(32);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    const again = localAdminToken(data);
    expect(again).toEqual({ ...first, created: false });
    // Loosened by hand: tightened again, token kept.
    chmodSync(first.file, 0o644);
    expect(localAdminToken(data).token).toBe(first.token);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
  });

  test('only the embedded config without tokens gets one', () => {
    const parsed = (tokens: string[]) => {
      const r = parseConfig({ hostname: 'localhost', dataDir: join(dir, 'cfg'), admin: { tokens } });
      if (!r.ok) throw new Error('config');
      return r.config;
    };
    const mine = parsed(['my-own-token-0123456789']);
    expect(withLocalToken(mine, true)).toEqual({ config: mine, local: null });
    expect(withLocalToken(parsed([]), false).local).toBeNull();
    const given = withLocalToken(parsed([]), true);
    expect(given.config.admin.tokens).toEqual([{ name: 'local', token: given.local?.token, scope: 'admin' }]);
  });

  test('the CLI finds it in ./.moat or in its checkout', () => {
    const cwd = join(dir, 'cwd');
    const checkout = join(dir, 'checkout');
    mkdirSync(join(checkout, '.moat'), { recursive: true });
    writeFileSync(join(checkout, '.moat', 'admin-token'), `${'c'.repeat(43)}\n`);
    expect(findLocalToken(cwd, checkout)).toBe('c'.repeat(43));
    mkdirSync(join(cwd, '.moat'), { recursive: true });
    writeFileSync(join(cwd, '.moat', 'admin-token'), `${'w'.repeat(43)}\n`);
    expect(findLocalToken(cwd, checkout)).toBe('w'.repeat(43));
    expect(findLocalToken(join(dir, 'nowhere'), join(dir, 'nowhere'))).toBeUndefined();
  });
});

async function startEmbedded(data: string, adminPort: number) {
  const child: ChildProcess = spawn(process.execPath, [bin, 'start'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      MOAT_DATA_DIR: data,
      MOAT_REDIS__URL: redis.url,
      MOAT_SMTP__LISTEN: JSON.stringify([`127.0.0.1:${await freePort()}`]),
      MOAT_ADMIN__LISTEN: `127.0.0.1:${adminPort}`,
      MOAT_DELIVERY__THREAD: 'false',
    },
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const deadline = Date.now() + 20_000;
  while (!stderr.includes('admin token in') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  return {
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

test('moat start with the embedded config: prints the dashboard and the token file once, the API takes the token, a restart keeps it', async () => {
  const data = join(dir, 'embedded');
  const port = await freePort();
  const first = await startEmbedded(data, port);
  let token = '';
  try {
    const file = join(data, 'admin-token');
    expect(first.stderr()).toContain(
      `moat: dashboard at http://127.0.0.1:${port}/dashboard; admin token in ${file} (made now)`,
    );
    expect(first.stderr().match(/admin token in/g)).toHaveLength(1);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    token = readFileSync(file, 'utf8').trim();
    const nodes = await fetch(`http://127.0.0.1:${port}/nodes`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(nodes.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/nodes`)).status).toBe(401);
  } finally {
    await first.stop();
  }
  const second = await startEmbedded(data, port);
  try {
    expect(second.stderr()).toContain('admin token in');
    expect(second.stderr()).not.toContain('(made now)');
    expect(readFileSync(join(data, 'admin-token'), 'utf8').trim()).toBe(token);
  } finally {
    await second.stop();
  }
});
