import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, keysFor, liveNodes, readCounters, Spool, whenReady } from '@moat/spool';
import { freePort, type RedisServer, startRedis } from '@moat/testkit';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { afterAll, beforeAll, expect, test } from 'vitest';

// `moat edge` as a user runs it: the built command, a config file, a real redis-server.
const bin = join(import.meta.dirname, '..', 'bin', 'moat');
const dir = mkdtempSync(join(tmpdir(), 'moat-edge-'));
let redis: RedisServer;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function runEdge(port: number, prefix: string): Promise<{ child: ChildProcess; output: () => string }> {
  const file = join(dir, `${prefix}.yaml`);
  writeFileSync(
    file,
    `hostname: relay.example.com
redis: { url: "${redis.url}", prefix: ${prefix} }
smtp: { listen: ["127.0.0.1:${port}"] }
inbound: { domains: { example.com: "[192.168.1.254]" } }
admin: { listen: null }
log: { level: info }
`,
  );
  const child = spawn(bin, ['edge', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  return { child, output: () => output };
}

async function waitFor(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function send(port: number, to: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = new SMTPConnection({ host: '127.0.0.1', port, ignoreTLS: true });
    conn.on('error', reject);
    conn.connect(() =>
      conn.send({ from: 'a@example.net', to: [to] }, 'Subject: hi\r\n\r\nhello\r\n', (err, info) => {
        conn.quit();
        return err ? reject(err) : resolve(info.response);
      }),
    );
  });
}

test('moat edge accepts inbound mail into Redis and stops cleanly on SIGTERM', async () => {
  const port = await freePort();
  const { child, output } = await runEdge(port, 'app1');
  await waitFor(() => output().includes('"edge.listening"'), 'the edge to listen');
  const reply = await send(port, 'b@example.com');
  expect(reply).toMatch(/^250 2\.0\.0 Ok: queued as/);
  const id = /queued as (\S+)/.exec(reply)?.[1] ?? '';
  const producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer);
  const spool = new Spool({ redis: producer, prefix: 'app1', timeout: 2000, ack: 'local', replicas: 1 });
  expect((await spool.readBody(id))?.toString()).toContain('hello');
  // A refused relay attempt, for the counters.
  await expect(send(port, 'someone@example.net')).rejects.toThrow(/550 5\.7\.1/);
  // The process's heartbeat names its role and its figures.
  const nodes = await liveNodes(producer, keysFor('app1'));
  expect(nodes).toEqual([
    expect.objectContaining({
      roles: ['edge'],
      stats: expect.objectContaining({ sessions: expect.any(Number) }),
    }),
  ]);
  child.kill('SIGTERM');
  const code = await new Promise((r) => child.once('exit', r));
  expect(code).toBe(0);
  expect(output()).toContain('"moat.stopped"');
  // Counters are flushed on the way out: one accepted, one refused relay.
  const samples = await readCounters(producer, keysFor('app1'));
  expect(samples).toEqual(
    expect.arrayContaining([
      { name: 'moat_messages_accepted_total', labels: {}, value: 1 },
      { name: 'moat_messages_rejected_total', labels: { reason: 'relay-denied' }, value: 1 },
    ]),
  );
  expect(await liveNodes(producer, keysFor('app1'))).toEqual([]);
  await spool.close();
  producer.disconnect();
});

test('moat edge refuses to start on a Redis that may evict keys, and says why', async () => {
  const producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer);
  await producer.config('SET', 'maxmemory-policy', 'allkeys-lru');
  try {
    const { child, output } = await runEdge(await freePort(), 'app2');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(output()).toMatch(/maxmemory-policy is \\?"allkeys-lru\\?".*noeviction/);
  } finally {
    await producer.config('SET', 'maxmemory-policy', 'noeviction');
    producer.disconnect();
  }
});

test('SIGTERM while the roles start up: they come up, then stop gracefully (exit 0)', async () => {
  const port = await freePort();
  const { child, output } = await runEdge(port, 'early');
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((r) =>
    child.once('exit', (code, signal) => r([code, signal])),
  );
  // The config is loaded and logged before any role starts: the signal lands mid start-up.
  await waitFor(() => output().includes('"config.loaded"'), 'config.loaded');
  child.kill('SIGTERM');
  expect(await exited).toEqual([0, null]);
  const events = [...output().matchAll(/"event":"([a-z._]+)"/g)].map((m) => m[1]);
  expect(events.indexOf('moat.stopped')).toBeGreaterThan(events.indexOf('moat.ready'));
  expect(events).toContain('moat.ready');
});
