/**
 * Chaos scenario 2: Redis (appendfsync always) SIGKILLed under load and started again 6 s later
 * on the same data directory. While it is down the edges must refuse with 4xx, never answer 250
 * (a 250 then could not be durable); once it is back they accept again; and nothing acknowledged
 * before, during or after is lost: the AOF brings back every body and job.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type DnsServer,
  type RedisServer,
  type SmtpSink,
  startDns,
  startRedis,
  startSmtpSink,
} from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Fleet } from './fleet.js';
import { acknowledges, assertNothingLost, formatTally, receivedIds, refuses, startLoad } from './ledger.js';
import { until } from './wait.js';

const DOWN_MS = 6000;

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let sink: SmtpSink;
let fleet: Fleet;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-chaos-redis-'));
  [redis, dns, sink] = await Promise.all([
    startRedis({ appendfsync: 'always' }),
    startDns(),
    startSmtpSink({ tls: false }),
  ]);
  fleet = await Fleet.start({
    dir,
    edges: 2,
    workers: 2,
    redis: { url: redis.url, timeout: '2s' },
    sinkPort: sink.port,
    dns: dns.server,
  });
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  await sink?.close();
  await Promise.all([redis?.stop(), dns?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('Redis SIGKILLed and restarted on its AOF: 4xx while it is down, never 250, nothing acknowledged lost', async () => {
  const load = startLoad({
    name: 'redis',
    ports: () => fleet.edgePorts(),
    clients: 4,
    maxMessages: 1200,
    durationMs: 25_000,
    pauseMs: 20,
    retry: { attempts: 40, delayMs: 500 },
  });
  const { ledger } = load;
  let killedAt = 0;
  let restartAt = 0;
  let upAt = 0;
  let atKill = 0;
  try {
    await until('100 acknowledged before the kill', () => ledger.acknowledged >= 100, 20_000);
    atKill = ledger.acknowledged;
    await redis.kill();
    killedAt = Date.now();
    await sleep(DOWN_MS);
    restartAt = Date.now();
    await redis.restart();
    upAt = Date.now();
    const before = ledger.acknowledged;
    await until(
      '100 more acknowledged once Redis is back',
      () => ledger.acknowledged >= before + 100,
      20_000,
    );
  } finally {
    load.stop();
    await load.done;
  }
  const tally = await ledger.drain(() => receivedIds([sink]), 30_000);
  const down = ledger.attempts.filter((a) => a.ended > killedAt && a.ended < restartAt);
  // A 250 to a DATA written after Redis died and answered before it was started again.
  const impossible = ledger.attempts.filter(
    (a) => acknowledges(a) && a.dataSent > killedAt && a.ended < restartAt,
  );
  const outage = ledger.outage(killedAt);
  console.log(formatTally('chaos 2 (Redis SIGKILL + restart)', tally));
  console.log(
    `chaos 2: killed at ${atKill} acknowledged, down ${restartAt - killedAt} ms, AOF reload ${upAt - restartAt} ms; ` +
      `while down: ${ledger.replies(killedAt, restartAt)}; first refusal ${(outage?.firstRefusal ?? 0) - killedAt} ms ` +
      `after the kill, first acceptance ${(outage?.firstAcceptance ?? 0) - upAt} ms after Redis answered again ` +
      `(outage seen by clients ${outage?.ms} ms)`,
  );
  expect(impossible.map((a) => `${a.messageId} ${a.text}`)).toEqual([]);
  expect(down.filter(refuses).length).toBeGreaterThan(0);
  expect(down.filter((a) => !refuses(a) && !acknowledges(a))).toEqual([]);
  expect(outage?.firstAcceptance, 'acceptance resumed').toBeLessThan(Number.POSITIVE_INFINITY);
  assertNothingLost('chaos 2', tally);
}, 120_000);

test('every edge and worker lived through it and stops cleanly on SIGTERM', async () => {
  expect(await fleet.stop()).toEqual({ edge1: 0, edge2: 0, worker1: 0, worker2: 0 });
}, 60_000);
