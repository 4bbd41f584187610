/**
 * Runs one or more roles in this process until SIGTERM/SIGINT, then stops them in the order
 * they started: the edge first stops taking mail (and lets DATA in progress finish), then the
 * workers finish their jobs, then the admin API; the private Redis goes last.
 */

import { hostname } from 'node:os';
import { changesNeedingRestart, type MoatConfig } from '@moat/policy';
import {
  Counters,
  connect,
  Heartbeat,
  keysFor,
  processStats,
  type RedisClient,
  whenReady,
} from '@moat/spool';
import pino, { type Logger } from 'pino';
import { BodyHandoff } from './body-handoff.js';
import { loadConfig } from './config-load.js';
import type { Io } from './io.js';
import { type LocalRedis, startLocalRedis } from './local-redis.js';
import { withLocalToken } from './local-token.js';
import { reportConfigErrors } from './report.js';
import { buildRole } from './roles.js';

/** Moat's version, as nodes report it. */
export const VERSION = '0.1.0';

export const ROLES = ['start', 'edge', 'worker', 'admin'] as const;
export type Role = Exclude<(typeof ROLES)[number], 'start'>;

/** A running part of Moat. */
export interface Service {
  readonly name: string;
  stop(): Promise<void>;
  /** Figures for this process's heartbeat (sessions, routes, …). */
  stats?(): Record<string, number>;
  /** Checks for /ready beyond Redis (e.g. `filter:clamav`: its daemon answers). */
  ready?(): Record<string, boolean>;
  /** Things /ready reports without being unready (e.g. acknowledging without replicas). */
  warnings?(): string[];
  /** A reloaded config (its live keys changed only: see changesNeedingRestart), for new sessions. */
  reload?(config: Readonly<MoatConfig>): Promise<void>;
}

export interface RoleContext {
  readonly config: Readonly<MoatConfig>;
  readonly redisUrl: string;
  readonly log: Logger;
  readonly roles: readonly Role[];
  /** This process's id in heartbeats and tracking events: "<hostname>:<pid>". */
  readonly nodeId: string;
  readonly version: string;
  /** This process's share of the cluster-wide metrics. */
  readonly counters: Counters;
  /** Writes a finished log line (JSON and newline) to this process's log destination. */
  readonly writeLog: (line: string) => void;
  /** Every role's /ready checks in this process (asked when /ready is, so any start order works). */
  readonly readiness: () => Record<string, boolean>;
  /** Every role's warnings for /ready. */
  readonly warnings: () => string[];
  /** The edge's durable bodies, handed to this process's own delivery (delivery.bodyCache). */
  readonly bodies: BodyHandoff;
}

export async function runRoles(
  roles: readonly Role[],
  configFile: string | undefined,
  io: Io,
): Promise<number> {
  const loaded = loadConfig(configFile, io.env);
  if (!loaded.ok) return reportConfigErrors(loaded.errors, io);
  // The embedded one-machine config gets a local admin token (made on the first start).
  const { config, local } = roles.includes('admin')
    ? withLocalToken(loaded.config, configFile === undefined)
    : { config: loaded.config, local: null };
  // One destination for the process: a delivery thread's lines are written through it too.
  const destination = pino.destination({ dest: 1, sync: false });
  const log = pino(
    { level: config.log.level, base: { node: config.hostname, pid: process.pid } },
    destination,
  );
  log.info(
    { event: 'config.loaded', source: loaded.source, roles, version: VERSION, nodeVersion: process.version },
    'moat starting',
  );

  let started: () => void = () => {};
  // Listened for from the start: a SIGTERM while roles start up stops them gracefully once up,
  // instead of killing the process half-started.
  const stopSignal = new Promise<NodeJS.Signals>((done) => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  // SIGHUP (systemctl reload, `moat reload`) re-reads the config; one reload at a time, and
  // none before the roles are up (a SIGHUP during start-up waits for them).
  let reloads: Promise<void> = new Promise<void>((up) => {
    started = up;
  });
  process.on('SIGHUP', () => {
    reloads = reloads.then(() => reload());
  });
  let running = config;
  const reload = async () => {
    const loaded = loadConfig(configFile, io.env);
    const refuse = (errors: readonly { path: string; message: string }[]) =>
      log.error(
        { event: 'config.reload_refused', errors },
        'config reload refused; the running config stays',
      );
    if (!loaded.ok) return refuse(loaded.errors);
    const next = roles.includes('admin')
      ? withLocalToken(loaded.config, configFile === undefined).config
      : loaded.config;
    const fixed = changesNeedingRestart(running, next);
    if (fixed.length > 0)
      return refuse(
        fixed.map((path) => ({ path, message: 'cannot change while Moat runs: restart to change it' })),
      );
    try {
      for (const s of services) await s.reload?.(next);
    } catch (err) {
      log.error({ event: 'config.reload_failed', err }, 'config reload failed part way; restart to be sure');
      return;
    }
    log.level = next.log.level;
    running = next;
    log.info({ event: 'config.reloaded', source: loaded.source }, 'config reloaded');
  };
  let localRedis: LocalRedis | null = null;
  let processRedis: RedisClient | null = null;
  let heartbeat: Heartbeat | null = null;
  let counters: Counters | null = null;
  const services: Service[] = [];
  const stopAll = async () => {
    for (const s of services) {
      await s.stop().catch((err: unknown) => log.error({ event: 'role.stop_failed', role: s.name, err }));
    }
    await counters?.stop().catch(() => {});
    await heartbeat?.stop();
    processRedis?.disconnect();
    await localRedis?.stop();
  };
  try {
    let redisUrl = config.redis.url;
    if (redisUrl === null) {
      localRedis = await startLocalRedis(config.dataDir);
      redisUrl = localRedis.url;
      log.info(
        { event: 'redis.local_started', url: redisUrl, pid: localRedis.pid },
        'started a private redis-server',
      );
    }
    const nodeId = `${hostname()}:${process.pid}`;
    const keys = keysFor(config.redis.prefix, config.redis.partitions);
    const redis = connect(
      { url: redisUrl, commandTimeout: config.redis.timeout, name: `moat:${nodeId}` },
      'producer',
    );
    processRedis = redis;
    const processCounters = new Counters(redis, keys);
    processCounters.start();
    counters = processCounters;
    const context: RoleContext = {
      config,
      redisUrl,
      log,
      roles,
      nodeId,
      version: VERSION,
      counters: processCounters,
      writeLog: (line) => destination.write(line),
      readiness: () => Object.assign({}, ...services.map((s) => s.ready?.() ?? {})),
      warnings: () => services.flatMap((s) => s.warnings?.() ?? []),
      bodies: new BodyHandoff(),
    };
    for (const role of roles) services.push(await buildRole(role, context));
    // One heartbeat per process, with every role's figures.
    const startedAt = Date.now();
    heartbeat = new Heartbeat(redis, keys, () => ({
      id: nodeId,
      hostname: config.hostname,
      pid: process.pid,
      roles,
      version: VERSION,
      nodeVersion: process.version,
      startedAt,
      stats: Object.assign(processStats(), ...services.map((s) => s.stats?.() ?? {})),
    }));
    // The first beat must not go out before this connection is up (it has no offline queue):
    // then a node is in /nodes as soon as it logs moat.ready.
    await whenReady(redis, 5000).catch(() => {});
    await heartbeat.start();
  } catch (err) {
    log.fatal({ event: 'moat.start_failed', err }, 'moat could not start');
    await stopAll();
    return 1;
  }
  log.info({ event: 'moat.ready', roles }, 'moat is running');
  started();
  if (local && config.admin.listen) {
    const listen = config.admin.listen;
    const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
    const url = `${config.admin.tls ? 'https' : 'http'}://${host}:${listen.port}/dashboard`;
    log.info(
      { event: 'admin.local_token', url, tokenFile: local.file, created: local.created },
      'admin token',
    );
    io.err(
      `moat: dashboard at ${url}; admin token in ${local.file}${local.created ? ' (made now)' : ''}
` +
        `      the moat CLI finds it by itself; for curl: export MOAT_ADMIN_TOKEN="$(cat ${local.file})"
`,
    );
  }
  const signal = await stopSignal;
  log.info({ event: 'moat.stopping', signal }, 'moat stopping');
  await stopAll();
  log.info({ event: 'moat.stopped' }, 'moat stopped');
  return 0;
}
