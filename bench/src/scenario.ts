/**
 * One measured run of one system under one load: start the sink and the system, drive
 * smtp-source, wait for the sink to count everything, measure latency, stop all.
 */
import { spawnSync } from 'node:child_process';
import { freePort, startPostfix, startRedis } from '@moat/testkit';
import { measureLatency } from './latency.js';
import { type MoatLayout, startMoat } from './moat.js';
import { machineBusySeconds, RssSampler } from './procs.js';
import { processTree, runSource, startSink } from './smtp-tools.js';

export type SystemName = 'direct' | 'postfix' | `moat-${MoatLayout}-${'always' | 'everysec'}`;

export interface Load {
  readonly size: number;
  readonly sessions: number;
  readonly perConnection: 1 | 'all';
  readonly messages: number;
  readonly latencyMessages: number;
}

export interface Measurement {
  readonly system: SystemName;
  readonly load: Load;
  /** Messages per second until smtp-source finished. */
  readonly acceptRate: number;
  /** Messages per second until the sink counted them all (null: accept-only system). */
  readonly endToEndRate: number | null;
  readonly p50: number;
  readonly p99: number;
  /** Whole-machine busy CPU seconds per 1,000 messages (load generator and sink included). */
  readonly cpuPer1000: number;
  /** Peak summed RSS of the system's processes (Moat and its Redis; Postfix's process tree). */
  readonly peakRss: number;
}

interface Running {
  port: number;
  pids(): number[];
  stop(): Promise<void>;
  acceptOnly: boolean;
  /** Redis `INFO commandstats` (Moat systems only). */
  commandStats?(): string;
}

async function startSystem(system: SystemName, sinkPort: number): Promise<Running> {
  if (system === 'direct') return { port: sinkPort, pids: () => [], stop: async () => {}, acceptOnly: false };
  const port = await freePort();
  if (system === 'postfix') {
    // default_process_limit 200, so that 200 sessions get 200 smtpd processes.
    const pf = await startPostfix({
      port,
      relayhost: `[127.0.0.1]:${sinkPort}`,
      relayDomains: ['example.com'],
      processLimit: 200,
    });
    const master = await pf.pid();
    return { port, pids: () => processTree(master), stop: () => pf.stop(), acceptOnly: false };
  }
  const [, layout, fsync] = system.split('-') as [string, MoatLayout, 'always' | 'everysec'];
  const redis = await startRedis({ appendfsync: fsync });
  const moat = await startMoat({ layout, port, redisUrl: redis.url, sinkPort, prefix: 'bench' });
  return {
    port,
    pids: () => [...moat.pids(), redis.pid],
    async stop() {
      await moat.stop();
      await redis.stop();
    },
    acceptOnly: layout === 'edge',
    commandStats: () =>
      spawnSync('redis-cli', ['-p', String(redis.port), 'INFO', 'commandstats'], { encoding: 'utf8' }).stdout,
  };
}

export async function measure(system: SystemName, load: Load): Promise<Measurement> {
  const sinkPort = await freePort();
  const sink = await startSink(sinkPort);
  const running = await startSystem(system, sinkPort);
  try {
    const rss = new RssSampler(() => running.pids());
    const busy0 = machineBusySeconds();
    const started = performance.now();
    const source = await runSource({
      port: running.port,
      messages: load.messages,
      sessions: load.sessions,
      size: load.size,
      perConnection: load.perConnection,
      to: 'user@example.com',
      timeoutMs: 300_000,
    });
    if (!source.ok) throw new Error(`smtp-source failed against ${system}:\n${source.output.slice(-2000)}`);
    let endToEndRate: number | null = null;
    if (!running.acceptOnly) {
      await sink.waitForCount(load.messages, 300_000);
      endToEndRate = load.messages / ((performance.now() - started) / 1000);
    }
    const busy = machineBusySeconds() - busy0;
    const peakRss = rss.stop();
    const latency = await measureLatency(running.port, {
      messages: load.latencyMessages,
      sessions: Math.min(load.sessions, 20),
      size: load.size,
      to: 'user@example.com',
    });
    return {
      system,
      load,
      acceptRate: load.messages / source.seconds,
      endToEndRate,
      p50: latency.p50,
      p99: latency.p99,
      cpuPer1000: (busy / load.messages) * 1000,
      peakRss,
    };
  } finally {
    // MOAT_BENCH_COMMANDSTATS=1: Redis commands per message, to find round trips worth saving.
    if (process.env.MOAT_BENCH_COMMANDSTATS && running.commandStats) {
      process.stderr.write(perMessage(running.commandStats(), load.messages + load.latencyMessages));
    }
    await running.stop();
    await sink.stop();
  }
}

/** `cmdstat_evalsha:calls=4800,...` lines as calls per message, most frequent first. */
function perMessage(stats: string, messages: number): string {
  const rows = [...stats.matchAll(/^cmdstat_(\S+?):calls=(\d+),usec=(\d+)/gm)].map(
    ([, name, calls, usec]) => [name ?? '', Number(calls) / messages, Number(usec) / messages] as const,
  );
  rows.sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, r) => sum + r[1], 0);
  return `redis commands per message: ${total.toFixed(1)}\n${rows
    .map(
      ([name, calls, usec]) =>
        `  ${name.padEnd(24)} ${calls.toFixed(2).padStart(6)} calls  ${usec.toFixed(0).padStart(5)} us`,
    )
    .join('\n')}\n`;
}
