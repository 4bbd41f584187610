/** Moat as the harness runs it: the built `moat` command, with a config file of the harness's own. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Proc, serverEnv, start, waitFor } from './procs.js';
import { portOpen } from './smtp-tools.js';
import { VERIFY_DOMAIN } from './verify.js';

const BIN = resolve(import.meta.dirname, '..', '..', 'apps', 'moat', 'bin', 'moat');
/** What bin/moat loads once it has checked the Node version: run directly on another Node. */
const MAIN = resolve(import.meta.dirname, '..', '..', 'apps', 'moat', 'dist', 'main.js');

/**
 * edge: `moat edge` alone; start: `moat start` (delivery in its own thread on more than one
 * CPU); onethread: `moat start` with delivery.thread false; split: edge and worker processes.
 */
export type MoatLayout = 'edge' | 'start' | 'onethread' | 'split';

export interface MoatRun {
  readonly procs: readonly Proc[];
  pids(): number[];
  stop(): Promise<void>;
}

export async function startMoat(opts: {
  layout: MoatLayout;
  port: number;
  redisUrl: string;
  sinkPort: number;
  prefix: string;
  /** Extra smtp keys (e.g. idleTimeout). */
  smtp?: Record<string, unknown>;
  /** Where mail for VERIFY_DOMAIN goes (the sample check of verify.ts). */
  verifyPort?: number;
  /** Run Moat on this Node.js binary (its built entry, past bin/moat's version check). */
  node?: string;
  /** The `filters` block (bench "+filters" systems) and the DNS servers it resolves through. */
  filters?: Record<string, unknown>;
  dns?: { servers: string[] };
  /** Top-level keys of the session checks (dnsbl, recipients, limits). */
  checks?: Record<string, unknown>;
  /** More `redis` keys (partitions). */
  redis?: Record<string, unknown>;
}): Promise<MoatRun> {
  const dir = mkdtempSync(join(tmpdir(), 'moat-bench-'));
  const file = join(dir, 'moat.yaml');
  // YAML is a superset of JSON: the harness writes its config as JSON.
  const config = {
    hostname: 'moat-bench.localdomain',
    redis: { url: opts.redisUrl, prefix: opts.prefix, ...opts.redis },
    smtp: {
      listen: [`127.0.0.1:${opts.port}`],
      maxConnections: 20000,
      maxConnectionsPerClient: 20000,
      ...opts.smtp,
    },
    inbound: {
      domains: {
        'example.com': `[127.0.0.1]:${opts.sinkPort}`,
        ...(opts.verifyPort ? { [VERIFY_DOMAIN]: `[127.0.0.1]:${opts.verifyPort}` } : {}),
      },
    },
    admin: { listen: null },
    log: { level: 'warn' },
    ...(opts.filters ? { filters: opts.filters } : {}),
    ...(opts.dns ? { dns: opts.dns } : {}),
    ...opts.checks,
    ...(opts.layout === 'onethread' ? { delivery: { thread: false } } : {}),
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  const roles =
    opts.layout === 'edge' ? [['edge']] : opts.layout === 'split' ? [['edge'], ['worker']] : [['start']];
  // As deployed: glibc's allocator setting of scripts/start.sh (a --node wrapper may unset it);
  // with MOAT_BENCH_PROFILE=<dir>, every Moat process writes a V8 CPU profile there (serverEnv).
  const env = { env: serverEnv() };
  const procs = roles.map((args) =>
    opts.node
      ? start(opts.node, [MAIN, ...args, '--config', file], env)
      : start(BIN, [...args, '--config', file], env),
  );
  await waitFor(() => portOpen(opts.port), `moat to listen on ${opts.port}`, 20_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${procs.map((p) => p.output()).join('\n')}`);
  });
  return {
    procs,
    pids: () => procs.map((p) => p.pid),
    async stop() {
      await Promise.all(procs.map((p) => p.stop('SIGTERM', 15_000)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
