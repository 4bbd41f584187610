/**
 * Chaos scenario 5: the smart host is slow (DATA answered after 500 ms), so the queue grows in a
 * small Redis (maxmemory 12 MB). With redis.maxMemoryUsage 0.5 the edges answer 452 to new mail
 * before Redis is anywhere near its limit: Redis never refuses a write (no OOM error) and its
 * memory stays under maxmemory. Four clients send unpaced, about 13 MB/s: the edges read Redis
 * memory every 250 ms and count what they queued since, and refuse at MAIL and at the end of
 * DATA. (When they read it once a second at MAIL only, this load took Redis past maxmemory
 * before the first 452, and Redis refused writes with OOM.) Then the smart host speeds up, the
 * queue drains, the clients' retries are accepted again, and nothing acknowledged is lost.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, keysFor, memoryInfo, whenReady } from '@moat/spool';
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
import { acknowledges, assertNothingLost, formatTally, receivedIds, startLoad } from './ledger.js';
import { until } from './wait.js';

const MAXMEMORY = 12 * 1024 * 1024;
const THRESHOLD = 0.5;
const MB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let sink: SmtpSink;
let fleet: Fleet;
let observer: ReturnType<typeof connect>;
let slow = true;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-chaos-backpressure-'));
  [redis, dns, sink] = await Promise.all([
    startRedis({ maxmemory: String(MAXMEMORY) }),
    startDns(),
    startSmtpSink({ tls: false, onData: () => (slow ? sleep(500).then(() => undefined) : undefined) }),
  ]);
  observer = connect({ url: redis.url }, 'worker');
  await whenReady(observer);
  fleet = await Fleet.start({
    dir,
    edges: 2,
    workers: 2,
    redis: { url: redis.url, maxMemoryUsage: THRESHOLD },
    sinkPort: sink.port,
    dns: dns.server,
    delivery: { concurrency: 2, maxConnectionsPerHost: 2 },
  });
}, 60_000);

afterAll(async () => {
  await fleet?.stop();
  observer?.disconnect();
  await sink?.close();
  await Promise.all([redis?.stop(), dns?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a slow smart host: 452 before Redis fills up, never an OOM; drained once it speeds up, nothing lost', async () => {
  const baseline = (await memoryInfo(observer)).used;
  // Redis memory and the queue (messages held) every 100 ms, while the test runs.
  let peak = 0;
  let deepest = 0;
  let sampling = true;
  const messages = keysFor('chaos').messages;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, (await memoryInfo(observer)).used);
      deepest = Math.max(deepest, await observer.zcard(messages));
      await sleep(100);
    }
  })();

  const load = startLoad({
    name: 'backpressure',
    ports: () => fleet.edgePorts(),
    clients: 4,
    maxMessages: 3000,
    durationMs: 50_000,
    bodyBytes: 16 * 1024,
    retry: { attempts: 100, delayMs: 500 },
  });
  const { ledger } = load;
  const first452 = () => ledger.attempts.find((a) => a.code === '452');
  let fastAt = 0;
  try {
    await until('a 452 from an edge', () => first452() !== undefined, 40_000);
    // Refused for a while: the queue stays as it is, near the threshold.
    await sleep(3000);
    slow = false;
    fastAt = Date.now();
    const before = ledger.acknowledged;
    await until(
      '100 acknowledged once the smart host is fast',
      () => ledger.acknowledged >= before + 100,
      30_000,
    );
  } finally {
    load.stop();
    await load.done;
  }
  const tally = await ledger.drain(() => receivedIds([sink]), 40_000);
  sampling = false;
  await sampler;

  const refused452 = ledger.attempts.filter((a) => a.code === '452');
  const refusedIds = new Set(refused452.map((a) => a.messageId));
  const acceptedAfter452 = ledger.attempts.filter((a) => acknowledges(a) && refusedIds.has(a.messageId));
  const errors = String(await observer.info('errorstats'));
  const peakInfo = /^used_memory_peak:(\d+)/m.exec(String(await observer.info('memory')))?.[1];
  console.log(formatTally('chaos 5 (slow smart host, memory back-pressure)', tally));
  console.log(
    `chaos 5: Redis maxmemory ${MB(MAXMEMORY)}, back-pressure at ${MB(MAXMEMORY * THRESHOLD)}; baseline ${MB(baseline)}, ` +
      `peak sampled ${MB(peak)} (used_memory_peak ${MB(Number(peakInfo))}); queue up to ${deepest} messages; ` +
      `first 452 after ${ledger.attempts.filter((a) => acknowledges(a) && a.ended < (first452()?.ended ?? 0)).length} acknowledged; ` +
      `${refused452.length} 452 replies for ${refusedIds.size} messages, ${acceptedAfter452.length} of them accepted on a retry; ` +
      `from the first 452 to the speed-up (${fastAt - (refused452[0]?.ended ?? 0)} ms) ${
        ledger.attempts.filter(
          (a) => acknowledges(a) && a.ended > (refused452[0]?.ended ?? 0) && a.ended < fastAt,
        ).length
      } acknowledged (as fast as the slow smart host drained); ` +
      `errorstats: ${errors.replace(/\r?\n/g, ' ').replace('# Errorstats', '').trim() || 'none'}; replies: ${ledger.replies()}`,
  );
  expect(refused452.length).toBeGreaterThan(0);
  expect(
    refused452.every((a) => (a.step === 'mail' || a.step === 'end-of-data') && /^452 4\.3\.1/.test(a.text)),
  ).toBe(true);
  expect(errors).not.toMatch(/errorstat_OOM/);
  expect(peak).toBeLessThan(MAXMEMORY);
  expect(Number(peakInfo)).toBeLessThan(MAXMEMORY);
  // Mail refused with 452 was taken once there was room again.
  expect(acceptedAfter452.length).toBeGreaterThan(0);
  assertNothingLost('chaos 5', tally);
  // Drained: every body released.
  await expect.poll(() => observer.zcard(messages), { timeout: 15_000 }).toBe(0);
}, 150_000);

test('every edge and worker stops cleanly on SIGTERM', async () => {
  expect(await fleet.stop()).toEqual({ edge1: 0, edge2: 0, worker1: 0, worker2: 0 });
}, 60_000);
