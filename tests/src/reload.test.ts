/**
 * Config reload without a restart, on a real `moat edge`: SIGHUP (and `moat reload --pid`)
 * re-reads the file; a valid change takes effect for new sessions; an invalid file is refused
 * with the errors `moat config check` gives and the running config stays; a key that cannot
 * change live (the listen address) is named in the refusal.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort, RawSmtp, type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type MoatProcess, runMoat, startMoat } from './moat-process.js';

let dir: string;
let redis: RedisServer;
let moat: MoatProcess;
let port: number;
let file: string;

const config = (domains: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  hostname: 'reload.test',
  dataDir: dir,
  redis: { url: redis.url, prefix: 'reload' },
  smtp: { listen: [`127.0.0.1:${port}`] },
  inbound: { domains },
  admin: { listen: null },
  ...extra,
});

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-reload-'));
  redis = await startRedis();
  port = await freePort();
  file = path.join(dir, 'moat.yaml');
  moat = await startMoat('edge', config({ 'example.com': '[127.0.0.1]:9' }), dir, 'moat');
  await moat.waitForEvent('moat.ready');
});
afterAll(async () => {
  await moat?.stop();
  await redis?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function rcpt(to: string): Promise<string> {
  const c = await RawSmtp.connect({ port, localAddress: '127.0.0.3' });
  try {
    await c.cmd('EHLO client.test');
    await c.cmd('MAIL FROM:<a@elsewhere.test>');
    return await c.cmd(`RCPT TO:<${to}>`);
  } finally {
    c.destroy();
  }
}

const count = (event: string) => moat.logs.filter((l) => l.event === event).length;
async function nextLog(event: string, before: number) {
  const deadline = Date.now() + 10_000;
  while (count(event) <= before) {
    if (Date.now() > deadline) throw new Error(`no ${event}: ${JSON.stringify(moat.logs.slice(-3))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return moat.logs.filter((l) => l.event === event).at(-1) as Record<string, unknown>;
}

test('SIGHUP: a new inbound domain is accepted by new sessions', async () => {
  expect(await rcpt('x@new.example')).toBe('550 5.7.1 Relaying denied');
  await writeFile(
    file,
    JSON.stringify(config({ 'example.com': '[127.0.0.1]:9', 'new.example': '[127.0.0.1]:9' })),
  );
  const before = count('config.reloaded');
  process.kill(moat.pid, 'SIGHUP');
  await nextLog('config.reloaded', before);
  expect(await rcpt('x@new.example')).toBe('250 2.1.5 Accepted');
});

test("an invalid file is refused with config check's errors; the running config stays", async () => {
  await writeFile(file, JSON.stringify(config({ 'not a domain': '[127.0.0.1]:9' })));
  const before = count('config.reload_refused');
  process.kill(moat.pid, 'SIGHUP');
  const refused = await nextLog('config.reload_refused', before);
  expect(JSON.stringify(refused.errors)).toContain('inbound.domains[\\"not a domain\\"]');
  expect(await rcpt('x@new.example')).toBe('250 2.1.5 Accepted');
  // moat reload checks first: the same errors, exit 2, and no signal is sent.
  const r = await runMoat(['reload', '--pid', String(moat.pid), '--config', file]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('inbound.domains["not a domain"]');
});

test('a key that needs a restart is named, and nothing changes; moat reload of a valid file signals', async () => {
  const other = await freePort();
  await writeFile(
    file,
    JSON.stringify({
      ...config({ 'example.com': '[127.0.0.1]:9' }),
      smtp: { listen: [`127.0.0.1:${other}`] },
    }),
  );
  const before = count('config.reload_refused');
  process.kill(moat.pid, 'SIGHUP');
  const refused = await nextLog('config.reload_refused', before);
  expect(refused.errors).toEqual([
    { path: 'smtp.listen', message: 'cannot change while Moat runs: restart to change it' },
  ]);
  expect(await rcpt('x@new.example')).toBe('250 2.1.5 Accepted');

  await writeFile(file, JSON.stringify(config({ 'example.com': '[127.0.0.1]:9' })));
  const reloaded = count('config.reloaded');
  const r = await runMoat(['reload', '--pid', String(moat.pid), '--config', file]);
  expect(r.code).toBe(0);
  await nextLog('config.reloaded', reloaded);
  expect(await rcpt('x@new.example')).toBe('550 5.7.1 Relaying denied');
});
