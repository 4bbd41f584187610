/**
 * Chaos scenario 3: a Redis primary with two replicas and three Sentinels; the edges and
 * workers find the primary through the Sentinels (redis-sentinel://) and the edges acknowledge
 * only once a replica has the message (redis.ack: replicated). The primary is SIGKILLed under
 * load: the clients see refusals until a replica is promoted and has a replica of its own again,
 * then acceptance resumes. Nothing acknowledged may be lost. The old primary then comes back and
 * the Sentinels make it a replica of the new one while the load goes on.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect, whenReady } from '@moat/spool';
import {
  type DnsServer,
  type RedisServer,
  type Sentinel,
  type SmtpSink,
  startDns,
  startRedis,
  startSentinel,
  startSmtpSink,
} from '@moat/testkit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { Fleet } from './fleet.js';
import { acknowledges, assertNothingLost, formatTally, receivedIds, startLoad } from './ledger.js';
import { until } from './wait.js';

let dir: string;
let primary: RedisServer;
const replicas: RedisServer[] = [];
const sentinels: Sentinel[] = [];
let dns: DnsServer;
let sink: SmtpSink;
let fleet: Fleet;

/** One command on a short-lived connection to a Redis or a Sentinel on 127.0.0.1. */
async function ask(port: number, command: string, ...args: string[]): Promise<unknown> {
  const redis = connect({ url: `redis://127.0.0.1:${port}` }, 'producer');
  try {
    await whenReady(redis, 2000);
    return await redis.call(command, ...args);
  } finally {
    redis.disconnect();
  }
}

/** A field of INFO replication (role, master_link_status, connected_slaves…), or '' when unreachable. */
async function replication(port: number, field: string): Promise<string> {
  const info = String(await ask(port, 'INFO', 'replication').catch(() => ''));
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
}

/** The port of the primary the first Sentinel that answers names, or 0. */
async function namedPrimary(): Promise<number> {
  for (const s of sentinels) {
    const addr = (await ask(s.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', s.name).catch(() => null)) as
      | string[]
      | null;
    if (addr?.[1]) return Number(addr[1]);
  }
  return 0;
}

/** What each Sentinel logged about failovers and reconfigurations ("+switch-master", "+convert-to-slave"…). */
async function sentinelEvents(): Promise<string> {
  const logs = await Promise.all(sentinels.map((s) => readFile(s.logFile, 'utf8').catch(() => '')));
  return logs
    .map((log, i) => {
      const events = log.split('\n').filter((l) => / [#+-][a-z-]+ /.test(l));
      return `sentinel ${sentinels[i]?.port}:\n${events.slice(-40).join('\n')}`;
    })
    .join('\n');
}

/** How many times the Sentinels switched the primary (each Sentinel logs +switch-master once per failover). */
async function switches(): Promise<number> {
  const log = await readFile(sentinels[0]?.logFile ?? '', 'utf8').catch(() => '');
  return log.split('\n').filter((l) => l.includes('+switch-master')).length;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-chaos-sentinel-'));
  [primary, dns, sink] = await Promise.all([
    startRedis({ appendfsync: 'always' }),
    startDns(),
    startSmtpSink({ tls: false }),
  ]);
  const replicaOf = ['--replicaof', '127.0.0.1', String(primary.port)];
  replicas.push(
    ...(await Promise.all([1, 2].map(() => startRedis({ appendfsync: 'always', extraArgs: replicaOf })))),
  );
  await until(
    'both replicas in sync',
    async () => (await replication(primary.port, 'connected_slaves')) === '2',
    15_000,
    100,
  );
  sentinels.push(
    ...(await Promise.all(
      [1, 2, 3].map(() => startSentinel({ primaryPort: primary.port, downAfterMs: 1000, quorum: 2 })),
    )),
  );
  // Each Sentinel must know the two others (a failover needs a majority to elect a leader) and both replicas.
  await until(
    'the Sentinels to find each other and the replicas',
    async () => {
      for (const s of sentinels) {
        const fields = (await ask(s.port, 'SENTINEL', 'MASTER', s.name).catch(() => [])) as string[];
        const get = (k: string) => fields[fields.indexOf(k) + 1];
        if (get('num-other-sentinels') !== '2' || get('num-slaves') !== '2') return false;
      }
      return true;
    },
    20_000,
    100,
  );
  fleet = await Fleet.start({
    dir,
    edges: 2,
    workers: 2,
    redis: {
      url: `redis-sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${sentinels[0]?.name}`,
      ack: 'replicated',
      replicas: 1,
      timeout: '2s',
    },
    sinkPort: sink.port,
    dns: dns.server,
  });
}, 90_000);

afterAll(async () => {
  await fleet?.stop();
  await sink?.close();
  await Promise.all(sentinels.map((s) => s.stop()));
  await Promise.all([...replicas, primary].map((r) => r?.stop()));
  await dns?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('primary SIGKILLed under load with ack: replicated: acceptance resumes, nothing acknowledged lost', async () => {
  const load = startLoad({
    name: 'sentinel',
    ports: () => fleet.edgePorts(),
    clients: 4,
    maxMessages: 1200,
    durationMs: 45_000,
    pauseMs: 20,
    retry: { attempts: 60, delayMs: 500 },
  });
  const { ledger } = load;
  let killedAt = 0;
  let promotedAt = 0;
  let promoted = -1;
  let atKill = 0;
  let rejoined = '';
  try {
    await until('100 acknowledged before the kill', () => ledger.acknowledged >= 100, 20_000);
    atKill = ledger.acknowledged;
    await primary.kill();
    killedAt = Date.now();
    await until(
      'a replica promoted',
      async () => {
        for (const r of replicas) {
          if ((await replication(r.port, 'role')) === 'master') promoted = r.port;
        }
        return promoted > 0;
      },
      30_000,
      100,
    );
    promotedAt = Date.now();
    const before = ledger.acknowledged;
    await until(
      '100 more acknowledged after the failover',
      () => ledger.acknowledged >= before + 100,
      30_000,
    );
    // The old primary comes back: the Sentinels turn it into a replica of the primary they name,
    // the promoted replica unless a second failover has followed (a primary stalled past
    // down-after on a loaded machine); the Sentinels' events in the log tell which.
    await primary.restart();
    const restartedAt = Date.now();
    await until(
      'the old primary to replicate the primary the Sentinels name',
      async () => {
        const named = await namedPrimary();
        return (
          named > 0 &&
          named !== primary.port &&
          (await replication(primary.port, 'master_port')) === String(named)
        );
      },
      45_000,
      100,
    ).catch(async (err: unknown) => {
      console.log(`chaos 3: the Sentinels' events\n${await sentinelEvents()}`);
      throw err;
    });
    rejoined = `${await replication(primary.port, 'role')} of ${await replication(primary.port, 'master_port')} after ${Date.now() - restartedAt} ms`;
    const again = ledger.acknowledged;
    await until('50 more acknowledged after it rejoined', () => ledger.acknowledged >= again + 50, 20_000);
  } finally {
    load.stop();
    await load.done;
  }
  const tally = await ledger.drain(() => receivedIds([sink]), 30_000);
  const outage = ledger.outage(killedAt);
  console.log(formatTally('chaos 3 (Sentinel failover, ack replicated)', tally));
  console.log(
    `chaos 3: primary killed at ${atKill} acknowledged; replica ${promoted} promoted ${promotedAt - killedAt} ms ` +
      `after the kill (as seen by polling); outage ${outage?.ms} ms from the first refusal ` +
      `(${(outage?.firstRefusal ?? 0) - killedAt} ms after the kill) to the first acceptance ` +
      `(${(outage?.firstAcceptance ?? 0) - killedAt} ms after it); old primary back as ${rejoined}; ` +
      `failovers ${await switches()}; ` +
      `replies after the kill: ${ledger.replies(killedAt)}`,
  );
  expect(outage, 'refusals after the kill').not.toBeNull();
  expect(outage?.firstAcceptance, 'acceptance resumed').toBeLessThan(Number.POSITIVE_INFINITY);
  // Generous: detection (down-after 1 s), election, promotion, a replica attached again.
  expect(outage?.ms).toBeLessThan(30_000);
  expect(rejoined).toMatch(/^slave of \d+ after/);
  // No acknowledgement between the kill and the promotion: nothing replicated could answer it.
  const early = ledger.attempts.filter(
    (a) => acknowledges(a) && a.dataSent > killedAt + 100 && a.ended < promotedAt,
  );
  expect(early.map((a) => `${a.messageId} ${a.ended - killedAt} ms`)).toEqual([]);
  assertNothingLost('chaos 3', tally);
}, 150_000);

test('every edge and worker lived through the failover and stops cleanly on SIGTERM', async () => {
  expect(await fleet.stop()).toEqual({ edge1: 0, edge2: 0, worker1: 0, worker2: 0 });
}, 60_000);
