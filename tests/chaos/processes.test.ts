/**
 * Chaos scenario 1: two `moat edge` and two `moat worker` processes on one Redis (appendfsync
 * always), six SMTP clients sending. Under that load an edge is SIGKILLed and restarted, then a
 * worker (deliveries in flight: the smart host takes 50 ms to answer DATA), then the smart host
 * is down for 10 s (closed, and started again on the same port). Nothing acknowledged may be lost;
 * duplicates are allowed, at most one per delivery or session the faults cut.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, keysFor, whenReady } from '@moat/spool';
import {
  type DnsServer,
  type RedisServer,
  type SmtpSink,
  type SmtpSinkOptions,
  startDns,
  startRedis,
  startSmtpSink,
} from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Fleet } from './fleet.js';
import { assertNothingLost, formatTally, receivedIds, startLoad } from './ledger.js';
import { until } from './wait.js';

const CLIENTS = 6;
const CONCURRENCY = 4;
const SMART_HOST_DOWN_MS = 10_000;
const slowData: SmtpSinkOptions = { tls: false, onData: () => sleep(50).then(() => undefined) };

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
/** The smart host: a new sink on the same port after its outage. */
const sinks: SmtpSink[] = [];
let fleet: Fleet;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-chaos-processes-'));
  [redis, dns] = await Promise.all([startRedis({ appendfsync: 'always' }), startDns()]);
  sinks.push(await startSmtpSink(slowData));
  fleet = await Fleet.start({
    dir,
    edges: 2,
    workers: 2,
    redis: { url: redis.url },
    sinkPort: sinks[0]?.port ?? 0,
    dns: dns.server,
    delivery: { concurrency: CONCURRENCY, maxConnectionsPerHost: CONCURRENCY },
  });
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  await Promise.all(sinks.map((s) => s.close()));
  await Promise.all([redis?.stop(), dns?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('an edge and a worker SIGKILLed, the smart host down 10 s: nothing acknowledged is lost', async () => {
  const load = startLoad({
    name: 'processes',
    ports: () => fleet.edgePorts(),
    clients: CLIENTS,
    maxMessages: 1500,
    durationMs: 40_000,
    pauseMs: 20,
    retry: { attempts: 30, delayMs: 500 },
  });
  const { ledger } = load;
  const acknowledgedAfter = async (n: number, what: string) => {
    const target = ledger.acknowledged + n;
    await until(what, () => ledger.acknowledged >= target, 15_000);
  };
  const [edge1] = fleet.edges;
  const [worker1] = fleet.workers;
  if (!edge1 || !worker1) throw new Error('fleet incomplete');
  const marks: string[] = [];
  const mark = (what: string) => marks.push(`${what} at ${ledger.acknowledged} acknowledged`);
  try {
    await acknowledgedAfter(60, 'acknowledgements before the edge is killed');
    await fleet.kill(edge1);
    mark('edge1 SIGKILLed');
    await sleep(1000);
    await fleet.restart(edge1);
    mark('edge1 restarted');
    await acknowledgedAfter(60, 'acknowledgements after the edge restarted');

    await fleet.kill(worker1);
    mark('worker1 SIGKILLed');
    await sleep(1000);
    await fleet.restart(worker1);
    mark('worker1 restarted');
    await acknowledgedAfter(60, 'acknowledgements after the worker restarted');

    const smartHost = sinks[0];
    if (!smartHost) throw new Error('no sink');
    await smartHost.close();
    mark('smart host down');
    await sleep(SMART_HOST_DOWN_MS);
    sinks.push(await startSmtpSink({ ...slowData, port: smartHost.port }));
    mark('smart host up');
    await acknowledgedAfter(60, 'acknowledgements after the smart host came back');
  } finally {
    load.stop();
    await load.done;
  }
  const tally = await ledger.drain(() => receivedIds(sinks), 45_000);
  console.log(formatTally('chaos 1 (edge, worker SIGKILL; smart host down 10 s)', tally));
  console.log(`chaos 1: ${marks.join('; ')}; replies: ${ledger.replies()}`);
  assertNothingLost('chaos 1', tally);
  // Duplicates: at most one per delivery in flight on the killed worker, per delivery the
  // smart host's shutdown cut, and per session the killed edge had taken DATA on.
  expect(tally.duplicates).toBeLessThanOrEqual(CONCURRENCY + 2 * CONCURRENCY + CLIENTS);
  expect(tally.acknowledged).toBeGreaterThanOrEqual(240);
  // The smart host's second life received mail: delivery resumed after the outage.
  expect(sinks[1]?.messages.length).toBeGreaterThan(0);
}, 150_000);

test('nothing is left behind, and every process stops cleanly on SIGTERM', async () => {
  const producer = connect({ url: redis.url }, 'producer');
  try {
    await whenReady(producer);
    // Every body released once its job ended (deliveries finished in the previous test).
    const messages = keysFor('chaos').messages;
    await expect.poll(() => producer.zcard(messages), { timeout: 15_000 }).toBe(0);
  } finally {
    producer.disconnect();
  }
  const codes = await fleet.stop();
  expect(codes).toEqual({ edge1: 0, edge2: 0, worker1: 0, worker2: 0 });
  for (const worker of fleet.workers) {
    expect(worker.process.logs.some((l) => l.event === 'delivery.stopped')).toBe(true);
  }
}, 60_000);
