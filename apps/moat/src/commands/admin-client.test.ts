/**
 * `moat admin` and the admin commands, as a user runs them: the built command starts the admin
 * role against a real Redis holding real queued mail, and `moat queue|route|track` talk to it.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, Spool, whenReady } from '@moat/spool';
import { freePort, type RedisServer, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const bin = join(import.meta.dirname, '..', '..', 'bin', 'moat');
const ADMIN = 'cli-admin-token-0123456789';
const READ = 'cli-read-token-0123456789';
const ROUTE = '[192.168.1.254]';

let redis: RedisServer;
let producer: ReturnType<typeof connect>;
let spool: Spool;
let admin: ChildProcess;
let url: string;
let adminLog = '';

function moat(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(bin, args, {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, MOAT_ADMIN_URL: url, MOAT_ADMIN_TOKEN: ADMIN, ...env },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function until(check: () => Promise<boolean>, ms = 15_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out; admin log:\n${adminLog}`);
}

let dir = '';

beforeAll(async () => {
  redis = await startRedis();
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  dir = mkdtempSync(join(tmpdir(), 'moat-admin-cli-'));
  const config = join(dir, 'moat.yaml');
  writeFileSync(
    config,
    `hostname: relay.example.com
redis: ${redis.url}
inbound:
  domains:
    example.com: "${ROUTE}"
admin:
  listen: "127.0.0.1:${port}"
  tokens:
    - { name: ops, token: "\${ADMIN_TOKEN}", scope: admin }
    - { name: viewer, token: ${READ}, scope: read }
`,
  );
  admin = spawn(bin, ['admin', '--config', config], {
    env: { PATH: process.env.PATH, ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  admin.stdout?.on('data', (d) => {
    adminLog += String(d);
  });
  admin.stderr?.on('data', (d) => {
    adminLog += String(d);
  });
  await until(async () => (await fetch(`${url}/health`)).ok);
  producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer);
  spool = new Spool({ redis: producer, prefix: 'moat', timeout: 2000, ack: 'local', replicas: 1 });
});

afterAll(async () => {
  if (admin && admin.exitCode === null) {
    admin.kill('SIGTERM');
    await new Promise((r) => admin.once('exit', r));
  }
  await spool?.close();
  producer?.disconnect();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const send = (sender: string, recipients: string[], route = ROUTE) =>
  spool.enqueue({
    sender,
    routes: [{ routeId: route, recipients }],
    body: Buffer.from(`Subject: test from ${sender}\r\n\r\nhi\r\n`),
    client: { ip: '192.0.2.7', helo: 'client.example.org', user: null, tls: true },
  });

describe('moat admin + moat queue|route|track', () => {
  test('the admin node beats a heartbeat and the API is protected', async () => {
    // /health answers as soon as the API listens; the first beat follows it.
    type Nodes = { nodes: { roles: string[]; stats: Record<string, number> }[] };
    let body: Nodes = { nodes: [] };
    await until(async () => {
      const nodes = await fetch(`${url}/nodes`, { headers: { authorization: `Bearer ${READ}` } });
      expect(nodes.status).toBe(200);
      body = (await nodes.json()) as Nodes;
      return body.nodes.length > 0;
    });
    expect(body.nodes).toEqual([expect.objectContaining({ roles: ['admin'] })]);
    expect(body.nodes[0]?.stats.rssBytes).toBeGreaterThan(0);
    expect((await fetch(`${url}/routes`)).status).toBe(401);
  });

  test('queue list, show, hold, release, delete and track a real queued message', async () => {
    const m = await send('alice@example.org', ['bob@example.com']);
    const list = moat(['queue', 'list']);
    expect(list.err).toBe('');
    expect(list.code).toBe(0);
    expect(list.out).toMatch(
      new RegExp(
        `^${m.id}\\s+waiting\\s+\\[192\\.168\\.1\\.254\\]\\s+\\d+s\\s+0\\s+alice@example\\.org\\s+bob@example\\.com`,
        'm',
      ),
    );
    expect(list.out).toContain('waiting: 1, active: 0, deferred: 0, held: 0, failed: 0');

    const json = JSON.parse(moat(['queue', 'list', '--state', 'waiting', '--json']).out);
    expect(json.waiting.jobs[0]).toMatchObject({ messageId: m.id, sender: 'alice@example.org' });

    const show = moat(['queue', 'show', m.id]);
    expect(show.code).toBe(0);
    expect(show.out).toContain('sender:     alice@example.org');
    expect(show.out).toContain('192.0.2.7 (helo client.example.org, TLS)');
    expect(show.out).toContain('Subject: test from alice@example.org');
    expect(show.out).toMatch(/received/);

    const hold = moat(['queue', 'hold', m.id]);
    expect(hold.out).toMatch(new RegExp(`${m.id}\\s+\\[192\\.168\\.1\\.254\\]\\s+hold\\s+done\\s+held`));
    expect(moat(['queue', 'list', '--state', 'held']).out).toContain('held by ops');
    expect(moat(['queue', 'release', m.id]).out).toMatch(/release\s+done\s+waiting/);

    const track = moat(['track', m.id]);
    expect(
      track.out
        .split('\n')
        .filter((l) => l.includes(m.id))
        .map((l) => l.split(/\s+/)[2]),
    ).toEqual(['released', 'held', 'received']);
    expect(moat(['track', 'alice@example.org']).out).toContain('received');

    expect(moat(['queue', 'delete', m.id]).out).toMatch(/delete\s+done\s+done/);
    const gone = moat(['queue', 'show', m.id]);
    expect(gone.code).toBe(1);
    expect(gone.err).toBe(`moat: 404: no queued message ${m.id}\n`);
  });

  test('bulk by recipient domain with a dry run first', async () => {
    await send('x@example.org', ['a@example.com']);
    await send('y@example.org', ['b@example.com']);
    const dry = moat(['queue', 'hold', '--recipient', 'example.com', '--dry-run']);
    expect(dry.out).toContain('2 matched (dry run: nothing changed)');
    const held = moat(['queue', 'hold', '--recipient', 'example.com', '--json']);
    expect(JSON.parse(held.out).results).toHaveLength(2);
    const deleted = moat(['queue', 'delete', '--state', 'held', '--older-than', '0s']);
    expect(deleted.out).toContain('2 matched');
    expect(moat(['queue', 'list']).out).toContain('(queue empty)');
  });

  test('route pause and resume, kept in Redis', async () => {
    const paused = moat(['route', 'pause', ROUTE]);
    expect(paused.code).toBe(0);
    expect(paused.out).toContain(`route ${ROUTE} paused`);
    expect(await spool.queue(ROUTE).isPaused()).toBe(true);
    expect(moat(['route', 'list']).out).toMatch(/^\[192\.168\.1\.254\]\s+paused\s/m);
    expect(moat(['route', 'resume', ROUTE]).out).toContain(`route ${ROUTE} running`);
    expect(await spool.queue(ROUTE).isPaused()).toBe(false);
    const json = JSON.parse(moat(['route', 'list', '--json']).out);
    expect(json.routes.map((r: { routeId: string }) => r.routeId)).toContain('mx');
  });

  test('partitions: where mail lives and whether new mail goes there', async () => {
    const r = moat(['partitions']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('new mail goes to partition 0');
    expect(r.out).toMatch(/^PARTITION\s+TAG\s+SLOT\s+MESSAGES\s+NEW MAIL$/m);
    expect(r.out).toMatch(/^\s*0\s+\{moat\}\s+\d+\s+\d+\s+yes$/m);
    const json = JSON.parse(moat(['partitions', '--json']).out);
    expect(json).toMatchObject({
      placement: 1,
      partitions: [{ partition: 0, tag: '{moat}', placing: true }],
    });
    expect(moat(['partitions', 'extra']).code).toBe(2);
  });

  test('errors: no token, a read token for an action, bad usage, nothing listening', async () => {
    const noToken = moat(['route', 'list'], { MOAT_ADMIN_TOKEN: '' });
    expect(noToken.code).toBe(2);
    expect(noToken.err).toContain('no admin token: pass --token or set MOAT_ADMIN_TOKEN');

    const readOnly = moat(['route', 'pause', ROUTE, '--token', READ]);
    expect(readOnly.code).toBe(1);
    expect(readOnly.err).toBe('moat: 403: token "viewer" has scope read; this route needs scope admin\n');
    expect(moat(['route', 'list', '--token', READ]).code).toBe(0);

    const wrong = moat(['queue', 'list', '--token', 'nope-nope-nope-nope']);
    expect(wrong.err).toBe('moat: 401: the token is not valid\n');

    const usage = moat(['queue', 'hold']);
    expect(usage.code).toBe(2);
    expect(usage.err).toContain('or a filter: --sender');
    expect(moat(['queue', 'list', '--state', 'lost']).err).toContain('--state must be one of');
    expect(moat(['queue', 'list', '--limit', 'x']).code).toBe(2);

    const port = await freePort();
    const away = moat(['route', 'list', '--url', `http://127.0.0.1:${port}`]);
    expect(away.code).toBe(1);
    expect(away.err).toBe(`moat: cannot reach the admin API at http://127.0.0.1:${port}: ECONNREFUSED\n`);
  });

  test('the admin log never holds a token', () => {
    expect(adminLog).toContain('admin API listening');
    expect(adminLog).not.toContain(ADMIN);
    expect(adminLog).not.toContain(READ);
  });

  test('SIGTERM stops it cleanly', async () => {
    admin.kill('SIGTERM');
    const code = await new Promise((r) => admin.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(adminLog).toContain('moat stopped');
  });
});
