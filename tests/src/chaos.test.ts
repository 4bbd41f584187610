/**
 * At-least-once delivery across process death: a `moat worker` is killed with SIGKILL while
 * deliveries are in flight (the sink is slow to answer DATA); another worker takes the stalled
 * jobs over. Every message must arrive; duplicates are counted and reported (they are allowed,
 * at most one per delivery that was in flight).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compileRelayPolicy, parseConfig } from '@moat/policy';
import { connect, Spool, whenReady } from '@moat/spool';
import {
  type DnsServer,
  type RedisServer,
  type SmtpSink,
  startDns,
  startRedis,
  startSmtpSink,
} from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type MoatProcess, startMoat } from './moat-process.js';

const MESSAGES = 60;
const CONCURRENCY = 8;

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let sink: SmtpSink;
let producer: ReturnType<typeof connect>;
const processes: MoatProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-chaos-'));
  redis = await startRedis({ appendfsync: 'always' });
  dns = await startDns();
  sink = await startSmtpSink({ onData: () => new Promise((r) => setTimeout(() => r(undefined), 300)) });
  producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer);
});
afterAll(async () => {
  for (const p of processes) await p.kill();
  producer?.disconnect();
  await sink?.close();
  await dns?.close();
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('SIGKILL a worker mid-delivery: every message arrives at least once', async () => {
  const config = {
    hostname: 'relay.test',
    redis: { url: redis.url, prefix: 'chaos' },
    inbound: { domains: { 'example.com': `[127.0.0.1]:${sink.port}` } },
    delivery: {
      concurrency: CONCURRENCY,
      maxConnectionsPerHost: CONCURRENCY,
      lockDuration: '2s',
      stalledInterval: '1s',
      retry: ['500ms'],
    },
    dns: { servers: [dns.server] },
    admin: { listen: null },
    log: { level: 'info' },
  };
  const parsed = parseConfig(config);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const routeId = [...compileRelayPolicy(parsed.config).routes.keys()].find((id) => id !== 'mx') ?? '';

  const first = await startMoat('worker', config, dir, 'first');
  processes.push(first);
  await first.waitForEvent('moat.ready');

  const spool = new Spool({ redis: producer, prefix: 'chaos', timeout: 5000, ack: 'local', replicas: 1 });
  for (let i = 0; i < MESSAGES; i++) {
    await spool.enqueue({
      sender: 'alice@elsewhere.test',
      routes: [{ routeId, recipients: [`user${i}@example.com`] }],
      body: Buffer.from(`Subject: chaos ${i}\r\n\r\nmessage ${i}\r\n`),
      client: { ip: '127.0.0.1', helo: 'test', user: null, tls: false },
    });
  }
  // Let some deliveries finish and others be in flight (the sink answers DATA after 300 ms).
  await sink.waitForMessages(CONCURRENCY, 20_000);
  await first.kill();
  const atKill = sink.messages.length;

  const second = await startMoat('worker', config, dir, 'second');
  processes.push(second);
  await second.waitForEvent('moat.ready');

  const deadline = Date.now() + 60_000;
  const unique = () => new Set(sink.messages.flatMap((m) => m.rcptTo)).size;
  while (unique() < MESSAGES && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const duplicates = sink.messages.length - unique();
  console.log(
    `chaos: ${MESSAGES} messages, worker killed after ${atKill} deliveries with up to ${CONCURRENCY} in flight; ` +
      `${unique()} arrived, ${duplicates} duplicate(s)`,
  );
  expect(unique()).toBe(MESSAGES);
  expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);

  // Nothing left behind: every body released once its job ended.
  await expect.poll(() => producer.zcard(spool.keys.messages), { timeout: 10_000 }).toBe(0);
  await spool.close();

  // A worker stops gracefully on SIGTERM.
  expect(await second.stop()).toBe(0);
  expect(second.logs.some((l) => l.event === 'delivery.stopped')).toBe(true);
}, 120_000);
