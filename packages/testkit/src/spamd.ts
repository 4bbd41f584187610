/**
 * A real SpamAssassin daemon (Debian `spamd`, SpamAssassin 4.0) on 127.0.0.1, for tests of
 * spam filtering over the spamc protocol: local tests only (`--local`, `dns_available no`, no
 * RBL, Razor, Pyzor or DCC), no Bayes and no autolearn, no user configs (`-x`), a helper home
 * in its own temp dir (`-H`), in the foreground (no `-d`), stopped by PID.
 *
 * Rules: the ones the Debian package ships in /usr/share/spamassassin (`-C`), which work
 * without sa-update (GTUBE among them: 1000 points). Site config (`--siteconfigpath`): a copy
 * of Debian's /etc/spamassassin/*.pre (which plugins load) plus the kit's own local.cf, so the
 * machine's /etc/spamassassin/local.cf does not apply.
 *
 * As root, spamd's parent stays root (it only listens) and its children scan as `-u` (default
 * `debian-spamd`, the package's user, else `nobody`): spamd will not scan as root. Ready in
 * ~1.5 s (the rules compile at start).
 */
import { chown, copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  DaemonHandle,
  DaemonProcess,
  daemonBinary,
  exchange,
  type FilterDaemon,
  HOST,
  isRoot,
  systemUser,
} from './daemon.js';
import { leftovers } from './exit-hook.js';
import { freePort } from './ports.js';

export { GTUBE } from './rspamd.js';

export interface SpamdOptions {
  /** More local.cf lines (SpamAssassin config), e.g. `required_score 3`. */
  readonly extraConfig?: readonly string[];
  /** Rules directory (`-C`), default /usr/share/spamassassin (the package's rules). */
  readonly rulesDir?: string;
  /** As root: the user children scan as (default `debian-spamd`, else `nobody`). Ignored otherwise. */
  readonly user?: string;
  /** spamd's --max-children, default 2. */
  readonly maxChildren?: number;
  /** How long to wait for PONG, default 30 s. */
  readonly startTimeoutMs?: number;
}

export interface Spamd extends FilterDaemon {
  /** spamd's log (`-s stderr`, captured to this file). */
  readonly logFile: string;
  /** The user the children run as (undefined when not started as root). */
  readonly user: string | undefined;
}

export const SPAMD_PACKAGE = 'spamd';
const DEFAULT_RULES = '/usr/share/spamassassin';
const DEBIAN_SITE_CONFIG = '/etc/spamassassin';

const LOCAL_CF = [
  '# Written by @moat/testkit (spamd.ts): local tests only, nothing learnt, nothing looked up.',
  'dns_available no',
  'skip_rbl_checks 1',
  'use_bayes 0',
  'bayes_auto_learn 0',
  'ifplugin Mail::SpamAssassin::Plugin::Razor2',
  'use_razor2 0',
  'endif',
  'ifplugin Mail::SpamAssassin::Plugin::Pyzor',
  'use_pyzor 0',
  'endif',
  'ifplugin Mail::SpamAssassin::Plugin::DCC',
  'use_dcc 0',
  'endif',
];

export async function startSpamd(opts: SpamdOptions = {}): Promise<Spamd> {
  const binary = daemonBinary('spamd', SPAMD_PACKAGE);
  let user: string | undefined;
  let owner: { uid: number; gid: number } | undefined;
  if (isRoot()) {
    for (const candidate of opts.user ? [opts.user] : ['debian-spamd', 'nobody']) {
      owner = systemUser(candidate);
      if (owner) {
        user = candidate;
        break;
      }
    }
    if (!owner)
      throw new Error(
        `startSpamd: no user ${opts.user ?? 'debian-spamd or nobody'} to run spamd's children as`,
      );
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'moat-spamd-'));
  leftovers().dirs.add(dir);
  const remove = async () => {
    leftovers().dirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const site = path.join(dir, 'site');
    const home = path.join(dir, 'home');
    await mkdir(site);
    await mkdir(home);
    for (const name of await preFiles())
      await copyFile(path.join(DEBIAN_SITE_CONFIG, name), path.join(site, name));
    await writeFile(
      path.join(site, 'local.cf'),
      `${[...LOCAL_CF, ...(opts.extraConfig ?? [])].join('\n')}\n`,
    );
    if (owner) for (const p of [dir, site, home]) await chown(p, owner.uid, owner.gid);

    // spamd's own log goes to stderr, which the kit captures in stderr.log.
    const logFile = path.join(dir, 'stderr.log');
    // biome-ignore format: flag/value pairs read best one pair per line
    const args = [
      '--listen', `${HOST}:${port}`,
      '--pidfile', path.join(dir, 'spamd.pid'),
      '--configpath', opts.rulesDir ?? DEFAULT_RULES,
      '--siteconfigpath', site,
      '--helper-home-dir', home,
      '--syslog', 'stderr',
      '--max-children', String(opts.maxChildren ?? 2),
      '--local', // no network tests
      '--nouser-config',
    ];
    if (user) args.push('--username', user);
    const daemon = new DaemonProcess({
      name: `spamd on port ${port}`,
      binary,
      args,
      dir,
      logFiles: [],
      probe: async () => {
        const reply = await exchange(port, 'PING SPAMC/1.5\r\n\r\n', { timeoutMs: 1000 });
        return reply.startsWith('SPAMD/1.5 0 PONG') ? true : reply;
      },
      startTimeoutMs: opts.startTimeoutMs ?? 30_000,
    });
    const spamd = new LocalSpamd(daemon, port, dir, logFile, user, remove);
    return await spamd.begin();
  } catch (err) {
    await remove();
    throw err;
  }
}

/** Debian's plugin-loading files (init.pre, v310.pre, …); none on a machine without them. */
async function preFiles(): Promise<string[]> {
  try {
    return (await readdir(DEBIAN_SITE_CONFIG)).filter((name) => name.endsWith('.pre'));
  } catch {
    return [];
  }
}

class LocalSpamd extends DaemonHandle implements Spamd {
  readonly logFile: string;
  readonly user: string | undefined;

  constructor(
    daemon: DaemonProcess,
    port: number,
    dir: string,
    logFile: string,
    user: string | undefined,
    remove: () => Promise<void>,
  ) {
    super(daemon, { name: 'spamd', port, dir, remove });
    this.logFile = logFile;
    this.user = user;
  }
}

/** A parsed spamd reply. */
export interface SpamdReply {
  /** The status line, e.g. `SPAMD/1.1 0 EX_OK`. */
  status: string;
  /** From the `Spam:` header: `True ; 1000.0 / 5.0` → spam true, score 1000, threshold 5. */
  spam: boolean;
  score: number;
  threshold: number;
  /** The body: for SYMBOLS the comma-separated rule names, split; for CHECK empty. */
  symbols: string[];
  raw: string;
}

/**
 * Sends one spamc request (`CHECK` or `SYMBOLS`, protocol SPAMC/1.5) with `message` and
 * resolves with the parsed reply; rejects when spamd does not answer with a `Spam:` header.
 */
export async function spamdRequest(
  port: number,
  verb: 'CHECK' | 'SYMBOLS',
  message: string | Buffer,
  opts: { timeoutMs?: number; host?: string } = {},
): Promise<SpamdReply> {
  const body = typeof message === 'string' ? Buffer.from(message) : message;
  const request = Buffer.concat([
    Buffer.from(`${verb} SPAMC/1.5\r\nContent-length: ${body.length}\r\n\r\n`),
    body,
  ]);
  const raw = await exchange(port, request, { host: opts.host, timeoutMs: opts.timeoutMs ?? 15_000 });
  const [head = '', rest = ''] = raw.split('\r\n\r\n', 2);
  const [status = '', ...headers] = head.split('\r\n');
  const spamHeader = headers.find((h) => /^Spam:/i.test(h));
  const m = spamHeader && /^Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*\/\s*(-?[\d.]+)/i.exec(spamHeader);
  if (!m) throw new Error(`spamd answered without a Spam: header: ${JSON.stringify(raw.slice(0, 300))}`);
  return {
    status,
    spam: /^(true|yes)$/i.test(m[1] ?? ''),
    score: Number(m[2]),
    threshold: Number(m[3]),
    symbols: rest.trim() ? rest.trim().split(',') : [],
    raw,
  };
}
