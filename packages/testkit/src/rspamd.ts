/**
 * A real rspamd (Debian `rspamd` 3.4) on 127.0.0.1, for tests of spam filtering: its own
 * rspamd.conf (`-c`) that includes the package's common.conf and defines only the `normal`
 * worker (/checkv2, /ping) and the `controller`, on free loopback ports, in the foreground
 * (`-f`), stopped by PID.
 *
 * It never resolves through /etc/resolv.conf (not on loopback on these machines) nor reaches the
 * Internet: every lookup goes to the test's DNS server (`dnsServer`, testkit's startDns, which
 * has no upstream), fuzzy_check (which looks up remote hosts as soon as the config loads) is off,
 * and so are the modules that fetch maps from maps.rspamd.com / updates.rspamd.com at load
 * (RSPAMD_REMOTE_MAP_MODULES).
 *
 * Start-up: ~13 s cold (the main process compiles hyperscan databases for the TLD list and the
 * regexp rules), under 1 s warm. The compiled caches live in DBDIR, shared by every rspamd this
 * kit starts (one directory per user under os.tmpdir(), kept across runs). Everything an
 * instance writes for itself (pid, control socket, history, stats, rrd, symbols cache) goes to
 * its own RUNDIR, so parallel instances do not collide. Starts are serialised through a lock
 * directory in DBDIR (across test files and processes): two cold starts at once on 2 cores take
 * ~24 s together, one cold start and then a warm one ~14 s.
 *
 * Verdicts with the package's rules: GTUBE → action "reject" (symbol GTUBE, forced action). A
 * plain message sent with `IP: 127.0.0.1` → "no action". The same message from a remote IP
 * whose names the test DNS cannot resolve scores ~7 (HFILTER_*, RDNS_NONE) → "add header".
 */
import { chown, lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DaemonHandle,
  DaemonProcess,
  daemonBinary,
  type FilterDaemon,
  HOST,
  isRoot,
  missingMessage,
  systemUser,
} from './daemon.js';
import { leftovers } from './exit-hook.js';
import { freePort } from './ports.js';

/**
 * GTUBE, the Generic Test for Unsolicited Bulk Email: a message whose body holds this line is
 * spam to every filter (rspamd: symbol GTUBE, action "reject"; SpamAssassin: 1000 points).
 * Built from pieces so this source file is not itself flagged by a filter.
 */
export const GTUBE = ['XJS*C4JDBQADN1.NSBN3*2IDNEN*', 'GTUBE-STANDARD-ANTI-UBE', '-TEST-EMAIL*C.34X'].join(
  '',
);
export const RSPAMD_GTUBE = GTUBE;

/** Modules whose default config fetches a map over HTTPS from rspamd.com when it loads. */
export const RSPAMD_REMOTE_MAP_MODULES: readonly string[] = [
  'multimap', // freemail / disposable lists
  'whitelist', // spf_dkim_whitelist, dmarc_whitelist
  'phishing', // redirectors, phishing_whitelist (openphish is off already)
  'rbl', // surbl-whitelist
  'mime_types',
  'mid',
  'rspamd_update',
];

/** The C modules rspamd runs: the package's list without fuzzy_check. */
const FILTERS = 'chartable,dkim,regexp';

export interface RspamdOptions {
  /** The only DNS server rspamd uses, `127.0.0.1:PORT` (e.g. startDns().server). Loopback only. */
  readonly dnsServer: string;
  /** Compiled caches (hyperscan), shared across instances and runs. Default: os.tmpdir()/moat-rspamd-db-<uid>. */
  readonly dbDir?: string;
  /** Modules turned off with `enabled = false;` (default RSPAMD_REMOTE_MAP_MODULES). */
  readonly disabledModules?: readonly string[];
  /** Extra lines for local.d/options.inc (inside `options { }`), e.g. `dns { timeout = 0.5s; }`. */
  readonly options?: readonly string[];
  /** More files for local.d/ (name → content), e.g. `{ 'actions.conf': 'reject = 10;' }`. */
  readonly localFiles?: Readonly<Record<string, string>>;
  /** How long to wait for /ping, default 60 s (a cold start takes ~13 s on 2 idle cores). */
  readonly startTimeoutMs?: number;
}

export interface Rspamd extends FilterDaemon {
  /** The normal worker: POST /checkv2, GET /ping. */
  readonly port: number;
  /** `http://127.0.0.1:PORT` of the normal worker. */
  readonly url: string;
  /** The controller worker (/stat, /learnspam, …; no password from 127.0.0.1). */
  readonly controllerPort: number;
  readonly logFile: string;
  readonly dbDir: string;
  /** The DNS server it was given. */
  readonly dnsServer: string;
}

/** The part of a /checkv2 answer tests look at; the rest is there too. */
export interface RspamdResult {
  action: string;
  score: number;
  required_score: number;
  is_skipped: boolean;
  symbols: Record<string, { name: string; score: number; options?: string[] }>;
  [key: string]: unknown;
}

export const RSPAMD_PACKAGE = 'rspamd';
const RSPAMD_USER = '_rspamd';

export function defaultRspamdDbDir(): string {
  return path.join(os.tmpdir(), `moat-rspamd-db-${process.getuid?.() ?? 'user'}`);
}

export async function startRspamd(opts: RspamdOptions): Promise<Rspamd> {
  const binary = daemonBinary('rspamd', RSPAMD_PACKAGE);
  if (!/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\]):\d{1,5}$/.test(opts.dnsServer)) {
    throw new Error(`startRspamd: dnsServer must be a loopback "127.0.0.1:PORT" (got ${opts.dnsServer})`);
  }
  const owner = isRoot() ? systemUser(RSPAMD_USER) : undefined;
  if (isRoot() && !owner) {
    throw new Error(`user ${RSPAMD_USER} does not exist: ${missingMessage('rspamd', RSPAMD_PACKAGE)}`);
  }
  const dbDir = opts.dbDir ?? defaultRspamdDbDir();
  await prepareDbDir(dbDir, owner);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'moat-rspamd-'));
  leftovers().dirs.add(dir);
  const remove = async () => {
    leftovers().dirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const [port, controllerPort] = await twoFreePorts();
    const runDir = path.join(dir, 'run');
    const logDir = path.join(dir, 'log');
    const localDir = path.join(dir, 'local.d');
    for (const sub of [runDir, logDir, localDir]) await mkdir(sub);
    const configFile = path.join(dir, 'rspamd.conf');
    await writeFile(configFile, rspamdConf(port, controllerPort));
    await writeFile(path.join(localDir, 'options.inc'), optionsInc(opts));
    await writeFile(path.join(localDir, 'fuzzy_check.conf'), 'enabled = false;\n');
    for (const module of opts.disabledModules ?? RSPAMD_REMOTE_MAP_MODULES) {
      await writeFile(path.join(localDir, `${module}.conf`), 'enabled = false;\n');
    }
    for (const [name, content] of Object.entries(opts.localFiles ?? {})) {
      await writeFile(path.join(localDir, name), content);
    }
    if (owner) await chownTree(dir, owner);

    const logFile = path.join(logDir, 'rspamd.log');
    const args = [
      '-f',
      '-c',
      configFile,
      `--var=LOCAL_CONFDIR=${dir}`,
      `--var=DBDIR=${dbDir}`,
      `--var=RUNDIR=${runDir}`,
      `--var=LOGDIR=${logDir}`,
    ];
    if (owner) args.push('-u', RSPAMD_USER, '-g', RSPAMD_USER);
    const startTimeoutMs = opts.startTimeoutMs ?? 60_000;
    const daemon = new DaemonProcess({
      name: `rspamd on port ${port}`,
      binary,
      args,
      dir,
      logFiles: [logFile],
      probe: () => ping(port),
      startTimeoutMs,
    });
    // Waiting for another instance's start counts apart from this one's own start.
    const start = () => withStartLock(dbDir, startTimeoutMs, () => daemon.start());
    const rspamd = new LocalRspamd(
      daemon,
      { port, controllerPort, dir, logFile, dbDir, dnsServer: opts.dnsServer },
      start,
      remove,
    );
    return await rspamd.begin();
  } catch (err) {
    await remove();
    throw err;
  }
}

function rspamdConf(port: number, controllerPort: number): string {
  // The package's rspamd.conf, less the proxy and fuzzy workers and the local overrides
  // of the workers, with loopback ports.
  return `# Written by @moat/testkit (rspamd.ts)
.include "$CONFDIR/common.conf"

options {
    pidfile = "$RUNDIR/rspamd.pid";
    .include "$CONFDIR/options.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}

logging {
    type = "file";
    filename = "$LOGDIR/rspamd.log";
    .include "$CONFDIR/logging.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/logging.inc"
}

worker "normal" {
    bind_socket = "${HOST}:${port}";
    .include "$CONFDIR/worker-normal.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/worker-normal.inc"
}

worker "controller" {
    bind_socket = "${HOST}:${controllerPort}";
    .include "$CONFDIR/worker-controller.inc"
    .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/worker-controller.inc"
}
`;
}

function optionsInc(opts: RspamdOptions): string {
  return [
    '# Written by @moat/testkit (rspamd.ts)',
    `filters = "${FILTERS}";`,
    `dns { nameserver = ["${opts.dnsServer}"]; }`,
    // Per instance, not in the shared DBDIR:
    'control_socket = "$RUNDIR/rspamd.sock mode=0600";',
    'cache_file = "$RUNDIR/symbols.cache";',
    'dynamic_conf = "$RUNDIR/rspamd_dynamic";',
    'history_file = "$RUNDIR/rspamd.history";',
    'stats_file = "$RUNDIR/stats.ucl";',
    'rrd = "$RUNDIR/rspamd.rrd";',
    ...(opts.options ?? []),
    '',
  ].join('\n');
}

/** Creates the shared DBDIR if needed; refuses one that is a symlink or someone else's. */
async function prepareDbDir(dbDir: string, owner: { uid: number; gid: number } | undefined): Promise<void> {
  await mkdir(dbDir, { recursive: true, mode: 0o700 });
  const stat = await lstat(dbDir);
  const me = process.getuid?.() ?? stat.uid;
  if (!stat.isDirectory() || (stat.uid !== me && stat.uid !== owner?.uid)) {
    throw new Error(
      `rspamd DBDIR ${dbDir} is not a directory owned by uid ${me}${owner ? ` or ${owner.uid}` : ''}`,
    );
  }
  if (owner && stat.uid !== owner.uid) await chown(dbDir, owner.uid, owner.gid);
}

/** The starts of this process, one DBDIR at a time, in order. */
const startsInProcess = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` (one rspamd start) while holding DBDIR's start lock, a directory created
 * atomically, so that only one instance at a time compiles the caches and the others then
 * start warm. Starts in one process queue up before they try the lock; across processes, a
 * lock whose owner (a PID written inside) is gone is taken over.
 */
function withStartLock<T>(dbDir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const run = (startsInProcess.get(dbDir) ?? Promise.resolve()).then(() => withDirLock(dbDir, timeoutMs, fn));
  startsInProcess.set(
    dbDir,
    run.catch(() => {}),
  );
  return run;
}

async function withDirLock<T>(dbDir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = path.join(dbDir, '.moat-start.lock');
  const ownerFile = path.join(lock, 'pid');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(await readFile(ownerFile, 'utf8').catch(() => ''));
    const age = await lstat(lock).then(
      (st) => Date.now() - st.mtimeMs,
      () => 0,
    );
    // No PID yet: the owner is between mkdir and writeFile, unless that was long ago.
    const stale = owner > 0 ? !pidAlive(owner) : age > 5000;
    if (stale) {
      // Moved aside in one step, so that of two processes taking it over only one succeeds; a
      // lock that turns out to be another's, made since its owner was read, is put back.
      const aside = `${lock}.stale.${process.pid}.${Date.now()}`;
      if (
        await rename(lock, aside).then(
          () => true,
          () => false,
        )
      ) {
        const moved = Number(await readFile(path.join(aside, 'pid'), 'utf8').catch(() => ''));
        if (moved === owner) await rm(aside, { recursive: true, force: true });
        else await rename(aside, lock).catch(() => {});
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `waited ${timeoutMs} ms for another rspamd start (pid ${owner || '?'}) holding ${lock}`,
      );
    }
    await sleep(100);
  }
  try {
    await writeFile(ownerFile, String(process.pid));
    return await fn();
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function chownTree(dir: string, owner: { uid: number; gid: number }): Promise<void> {
  await chown(dir, owner.uid, owner.gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(full, owner);
    else await chown(full, owner.uid, owner.gid);
  }
}

async function twoFreePorts(): Promise<[number, number]> {
  const first = await freePort();
  for (;;) {
    const second = await freePort();
    if (second !== first) return [first, second];
  }
}

async function ping(port: number): Promise<true | string> {
  try {
    const res = await fetch(`http://${HOST}:${port}/ping`, { signal: AbortSignal.timeout(1000) });
    const body = await res.text();
    return res.ok && body.trim() === 'pong' ? true : `HTTP ${res.status} ${body.trim().slice(0, 100)}`;
  } catch (err) {
    return `error: ${(err as Error).cause ?? (err as Error).message}`;
  }
}

class LocalRspamd extends DaemonHandle implements Rspamd {
  readonly url: string;
  readonly controllerPort: number;
  readonly logFile: string;
  readonly dbDir: string;
  readonly dnsServer: string;

  constructor(
    daemon: DaemonProcess,
    where: {
      port: number;
      controllerPort: number;
      dir: string;
      logFile: string;
      dbDir: string;
      dnsServer: string;
    },
    start: () => Promise<void>,
    remove: () => Promise<void>,
  ) {
    super(daemon, { name: 'rspamd', port: where.port, dir: where.dir, remove, start });
    this.url = `http://${HOST}:${where.port}`;
    this.controllerPort = where.controllerPort;
    this.logFile = where.logFile;
    this.dbDir = where.dbDir;
    this.dnsServer = where.dnsServer;
  }
}

/**
 * POSTs `message` to /checkv2 and resolves with the parsed answer; rejects on a non-200 or a
 * timeout (default 10 s). `headers` are rspamd's request headers (IP, From, Rcpt, Helo, …);
 * without IP, rspamd skips the IP-based checks.
 */
export async function rspamdCheck(
  port: number,
  message: string | Buffer,
  opts: { headers?: Record<string, string>; timeoutMs?: number; host?: string } = {},
): Promise<RspamdResult> {
  const res = await fetch(`http://${opts.host ?? HOST}:${port}/checkv2`, {
    method: 'POST',
    headers: opts.headers,
    body: typeof message === 'string' ? message : new Uint8Array(message),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`rspamd /checkv2 answered HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text) as RspamdResult;
}

/** The log so far (for assertions on what rspamd did). */
export function readRspamdLog(rspamd: Rspamd): Promise<string> {
  return readFile(rspamd.logFile, 'utf8');
}
