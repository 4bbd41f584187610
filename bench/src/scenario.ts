/**
 * One measured run of one system under one load: start the sink and the system, drive
 * smtp-source, wait for the sink to count everything, measure latency, stop all.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import {
  freePort,
  groupMembers,
  startClamd,
  startDns,
  startPostfix,
  startRedis,
  startRspamd,
  startSmtpSink,
} from '@moat/testkit';
import { measureLatency } from './latency.js';
import { type MoatLayout, startMoat } from './moat.js';
import { cpuSeconds, machineBusySeconds, RssSampler, serverEnv, start, waitFor } from './procs.js';
import { portOpen, processTree, runSource, startSink } from './smtp-tools.js';
import { verifySample } from './verify.js';

const BARE_SERVER = join(import.meta.dirname, 'bare-server.js');
/** Messages relayed and compared byte for byte after each end-to-end run of Moat. */
const SAMPLE = 20;

/**
 * A Moat system may end in "@label": its processes then run on the Node.js binary that
 * `--node label=PATH` names (bench/src/run.ts), so two runtimes are measured in one run.
 * "+filters" (before any "@label") turns on clamd, Rspamd and sender authentication (real
 * daemons from the testkit, DNS on loopback), to measure what filtering costs; "+clamav",
 * "+rspamd", "+auth" (combinable) turn on one each. "+checks" turns on the session checks: a
 * DNS list, recipient validation by callout to the sink (cached in Redis after the first
 * message) and client rate limits too high to refuse anything.
 */
export type SystemName =
  | 'direct'
  | 'postfix'
  | 'bare-always'
  | 'bare-bullmq-always'
  | 'bare-spool-always'
  | 'bare-relay-always'
  | `moat-${MoatLayout}-${'always' | 'everysec'}${'' | `+${string}`}`
  | `moat-${MoatLayout}-${'always' | 'everysec'}${'' | `+${string}`}@${string}`;

export interface Load {
  readonly size: number;
  readonly sessions: number;
  readonly perConnection: 1 | 'all';
  readonly messages: number;
  readonly latencyMessages: number;
  /** Messages sent before the measured run, not counted (see measure). */
  readonly warmupMessages?: number;
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
  /**
   * CPU seconds per 1,000 messages of the system's own processes, all threads (null for
   * direct and Postfix, whose smtpd processes come and go): the server and its Redis apart.
   */
  readonly ownCpuPer1000?: {
    readonly server: number;
    readonly redis: number;
    /** The filter daemons' (clamd, Rspamd), for "+filters" systems. */
    readonly daemons?: number;
    /** Each server process apart, in start order (the split layout: edge, then worker). */
    readonly processes?: readonly number[];
  } | null;
  /** Sample messages relayed after the run and found byte-identical (0: not checked). */
  readonly verified?: number;
}

interface Running {
  port: number;
  pids(): number[];
  stop(): Promise<void>;
  acceptOnly: boolean;
  /** Redis `INFO commandstats` (Moat systems only). */
  commandStats?(): string;
  /** Relays a sample and checks it arrived unchanged (verify.ts); resolves with the count. */
  verify?(size: number): Promise<number>;
  /** CPU seconds so far of the server's processes, its Redis and filter daemons (Moat and bare only). */
  cpu?(): { server: number; redis: number; daemons?: number; processes: number[] };
}

function cpuOf(
  server: () => readonly number[],
  redisPid: number,
): () => { server: number; redis: number; processes: number[] } {
  return () => {
    const processes = server().map(cpuSeconds);
    return { server: processes.reduce((sum, s) => sum + s, 0), redis: cpuSeconds(redisPid), processes };
  };
}

async function startSystem(
  system: SystemName,
  sinkPort: number,
  nodes: ReadonlyMap<string, string>,
): Promise<Running> {
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
  if (system in BARE_FLAGS) return startBare(port, system as keyof typeof BARE_FLAGS, sinkPort);
  const [nameAndExtras, label] = system.split('@') as [string, string | undefined];
  const [name, ...extras] = nameAndExtras.split('+') as [string, ...string[]];
  const [, layout, fsync] = name.split('-') as [string, MoatLayout, 'always' | 'everysec'];
  const wanted = new Set(extras.flatMap((e) => (e === 'filters' ? ['clamav', 'rspamd', 'auth'] : [e])));
  for (const w of wanted)
    if (!['clamav', 'rspamd', 'auth', 'checks'].includes(w))
      throw new Error(`${system}: unknown "+${w}" (filters, clamav, rspamd, auth, checks)`);
  const filters = wanted.size > 0 ? await startFilterDaemons(wanted) : null;
  const node = label === undefined ? undefined : nodes.get(label);
  if (label !== undefined && node === undefined) throw new Error(`${system}: no --node ${label}=PATH given`);
  const redis = await startRedis({ appendfsync: fsync });
  const checker = layout === 'edge' ? null : await startSmtpSink();
  const moat = await startMoat({
    layout,
    port,
    redisUrl: redis.url,
    sinkPort,
    prefix: 'bench',
    ...(node ? { node } : {}),
    ...(filters ? { filters: filters.config, dns: { servers: [filters.dns.server] } } : {}),
    ...(wanted.has('checks') ? { checks: SESSION_CHECKS } : {}),
    ...(checker ? { verifyPort: checker.port } : {}),
  });
  return {
    port,
    pids: () => [...moat.pids(), redis.pid],
    async stop() {
      await moat.stop();
      await redis.stop();
      await checker?.close();
      await filters?.stop();
    },
    ...(checker
      ? { verify: (size: number) => verifySample(port, () => checker.messages, { count: SAMPLE, size }) }
      : {}),
    acceptOnly: layout === 'edge',
    commandStats: () => redisCommandStats(redis.port),
    cpu: filters
      ? () => ({ ...cpuOf(() => moat.pids(), redis.pid)(), daemons: filters.cpu() })
      : cpuOf(() => moat.pids(), redis.pid),
  };
}

/** "+checks": what the session checks cost when they refuse nothing (bench/src/moat.ts merges these keys). */
const SESSION_CHECKS = {
  dnsbl: { sites: ['bl.bench.test*3'] },
  recipients: { domains: { 'example.com': [{ callout: {} }] } },
  limits: { client: { connections: '1000000/1m', messages: '1000000/1m' } },
};

/** clamd and Rspamd (the testkit's), a DNS server for them and for mailauth, and the filters block. */
async function startFilterDaemons(wanted: ReadonlySet<string>) {
  const dns = await startDns({});
  const [clamd, rspamd] = await Promise.all([
    wanted.has('clamav') ? startClamd() : null,
    wanted.has('rspamd') ? startRspamd({ dnsServer: dns.server }) : null,
  ]);
  const daemons = [clamd, rspamd].filter((d) => d !== null);
  return {
    dns,
    config: {
      ...(clamd ? { clamav: { address: `127.0.0.1:${clamd.port}` } } : {}),
      ...(rspamd ? { rspamd: { url: rspamd.url, action: 'tag' } } : {}),
      ...(wanted.has('auth') ? { authentication: {} } : {}),
    },
    cpu: () => daemons.flatMap((d) => groupMembers(d.pid)).reduce((s, pid) => s + cpuSeconds(pid), 0),
    async stop() {
      await Promise.all(daemons.map((d) => d.stop()));
      await dns.close();
    },
  };
}

/**
 * bare-server.ts's flags for each floor: a list, a BullMQ job, Moat's spool, or the list and a
 * delivery to the sink (the only floor that relays).
 */
const BARE_FLAGS = {
  'bare-always': () => [],
  'bare-bullmq-always': () => ['--bullmq'],
  'bare-spool-always': () => ['--spool'],
  'bare-relay-always': (sinkPort: number) => ['--relay', String(sinkPort)],
};

/** bare-server.ts: smtp-server making each message durable in Redis, nothing else (accept only, but for the relay floor). */
async function startBare(port: number, system: keyof typeof BARE_FLAGS, sinkPort: number): Promise<Running> {
  const redis = await startRedis({ appendfsync: 'always' });
  const flags = BARE_FLAGS[system](sinkPort);
  const args = [BARE_SERVER, '--port', String(port), '--redis', redis.url, ...flags];
  // The same allocator setting as Moat's, and MOAT_BENCH_PROFILE's profile beside Moat's (serverEnv).
  const server = start(process.execPath, args, { env: serverEnv() });
  await waitFor(() => portOpen(port), `bare-server to listen on ${port}`, 20_000);
  return {
    port,
    pids: () => [server.pid, redis.pid],
    async stop() {
      await server.stop('SIGTERM', 10_000);
      await redis.stop();
    },
    acceptOnly: system !== 'bare-relay-always',
    commandStats: () => redisCommandStats(redis.port),
    cpu: cpuOf(() => [server.pid], redis.pid),
  };
}

function redisCommandStats(port: number): string {
  return spawnSync('redis-cli', ['-p', String(port), 'INFO', 'commandstats'], { encoding: 'utf8' }).stdout;
}

export async function measure(
  system: SystemName,
  load: Load,
  nodes: ReadonlyMap<string, string> = new Map(),
): Promise<Measurement> {
  const sinkPort = await freePort();
  const sink = await startSink(sinkPort);
  const running = await startSystem(system, sinkPort, nodes);
  try {
    // Warm-up, not measured: a server that has run for a while (JIT-compiled code, Postfix's
    // smtpd processes already forked) is what a relay is in production. Without it the first
    // seconds of V8's compiling are charged to a 2,000-message run: 40 % of the edge's CPU.
    const warmup = load.warmupMessages ?? 0;
    if (warmup > 0) {
      const warm = await runSource({
        port: running.port,
        messages: warmup,
        sessions: load.sessions,
        size: load.size,
        perConnection: load.perConnection,
        to: 'user@example.com',
        timeoutMs: 300_000,
      });
      if (!warm.ok) throw new Error(`warm-up failed against ${system}:\n${warm.output.slice(-2000)}`);
      if (!running.acceptOnly) await sink.waitForCount(warmup, 300_000);
    }
    const delivered0 = running.acceptOnly ? 0 : sink.count();
    const rss = new RssSampler(() => running.pids());
    const busy0 = machineBusySeconds();
    const own0 = running.cpu?.();
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
      await sink.waitForCount(delivered0 + load.messages, 300_000);
      endToEndRate = load.messages / ((performance.now() - started) / 1000);
    }
    const busy = machineBusySeconds() - busy0;
    const own1 = running.cpu?.();
    const perThousand = (seconds: number) => (seconds / load.messages) * 1000;
    const ownCpuPer1000 =
      own0 && own1
        ? {
            server: perThousand(own1.server - own0.server),
            redis: perThousand(own1.redis - own0.redis),
            ...(own1.daemons !== undefined
              ? { daemons: perThousand(own1.daemons - (own0.daemons ?? 0)) }
              : {}),
            processes: own1.processes.map((s, i) => perThousand(s - (own0.processes[i] ?? 0))),
          }
        : null;
    const peakRss = rss.stop();
    const latency = await measureLatency(running.port, {
      messages: load.latencyMessages,
      sessions: Math.min(load.sessions, 20),
      size: load.size,
      to: 'user@example.com',
    });
    // Correctness goes with speed: a run whose sample arrives changed fails (and is left out).
    const verified = (await running.verify?.(load.size)) ?? 0;
    return {
      system,
      load,
      verified,
      acceptRate: load.messages / source.seconds,
      endToEndRate,
      p50: latency.p50,
      p99: latency.p99,
      cpuPer1000: perThousand(busy),
      peakRss,
      ownCpuPer1000,
    };
  } finally {
    // MOAT_BENCH_COMMANDSTATS=1: Redis commands per message, to find round trips worth saving.
    if (process.env.MOAT_BENCH_COMMANDSTATS && running.commandStats) {
      const sent =
        (load.warmupMessages ?? 0) + load.messages + load.latencyMessages + (running.verify ? SAMPLE : 0);
      process.stderr.write(perMessage(running.commandStats(), sent));
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
