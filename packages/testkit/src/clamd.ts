/**
 * A real ClamAV daemon (Debian `clamav-daemon`) on 127.0.0.1, for tests of virus scanning:
 * its own clamd.conf and signature database in a temp dir, TCP on a free port (and, on request,
 * a Unix socket in that dir), in the foreground, stopped by PID. No official database can be
 * downloaded here (and freshclam is never run): the database is one MD5 signature of the EICAR
 * test file, made with `sigtool` (Debian `clamav`), so EICAR is found and everything else is
 * clean.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  DaemonHandle,
  DaemonProcess,
  daemonBinary,
  exchange,
  type FilterDaemon,
  HOST,
  isRoot,
} from './daemon.js';
import { leftovers } from './exit-hook.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

/**
 * The EICAR anti-virus test file (68 bytes), which every scanner reports and which harms
 * nothing. Built from pieces so that this source file is not itself reported by scanners.
 */
export const EICAR = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', 'EICAR-STANDARD-ANTIVIRUS', '-TEST-FILE!$H+H*'].join(
  '',
);

/** The file the fixture's signature is made from; sigtool names the signature after it. */
const EICAR_FILE = 'Eicar-Test-Signature';

/**
 * The virus name the fixture's clamd reports for EICAR: `stream: Eicar-Test-Signature.UNOFFICIAL FOUND`
 * (an MD5 signature from a local .hdb file is "UNOFFICIAL"; ClamAV's own database says
 * `Win.Test.EICAR_HDB-1`, so code under test should match on ` FOUND`, not on the name).
 */
export const CLAMD_EICAR_SIGNATURE = `${EICAR_FILE}.UNOFFICIAL`;

export interface ClamdOptions {
  /** clamd's StreamMaxLength, e.g. '1M' or '100K' (clamd's default: 100M). */
  readonly streamMaxLength?: string;
  /**
   * Also listen on a Unix socket (LocalSocket) in the fixture's own directory, as clamd is
   * usually reached on one host (Debian's /run/clamav/clamd.ctl): its path is `socketPath`.
   */
  readonly localSocket?: boolean;
  /** More clamd.conf lines ("Option value"), appended last. */
  readonly extraConfig?: readonly string[];
  /** How long to wait for the first PONG, default 20 s. */
  readonly startTimeoutMs?: number;
}

export interface Clamd extends FilterDaemon {
  readonly configFile: string;
  /** Where clamd logs (LogFile). */
  readonly logFile: string;
  /** The Unix socket clamd listens on besides TCP (`localSocket: true`), else undefined. */
  readonly socketPath: string | undefined;
}

export const CLAMD_MISSING_PACKAGE = 'clamav-daemon';
export const SIGTOOL_MISSING_PACKAGE = 'clamav';

export async function startClamd(opts: ClamdOptions = {}): Promise<Clamd> {
  const binary = daemonBinary('clamd', CLAMD_MISSING_PACKAGE);
  const sigtool = daemonBinary('sigtool', SIGTOOL_MISSING_PACKAGE);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'moat-clamd-'));
  leftovers().dirs.add(dir);
  const remove = async () => {
    leftovers().dirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const db = path.join(dir, 'db');
    await mkdir(db);
    await writeFile(path.join(dir, EICAR_FILE), EICAR);
    // Relative path: sigtool names the signature after the file name it is given.
    const { stdout } = await run(sigtool, ['--md5', EICAR_FILE], { cwd: dir, timeout: 30_000 });
    await writeFile(path.join(db, 'test.hdb'), stdout);
    const configFile = path.join(dir, 'clamd.conf');
    const logFile = path.join(dir, 'clamd.log');
    const socketPath = opts.localSocket ? path.join(dir, 'clamd.sock') : undefined;
    await writeFile(configFile, clamdConf(port, dir, db, logFile, socketPath, opts));
    const daemon = new DaemonProcess({
      name: `clamd on port ${port}`,
      binary,
      args: ['-c', configFile],
      dir,
      logFiles: [logFile],
      // Ready when every listener answers, so a test may use either at once.
      probe: async () => {
        for (const where of socketPath ? [{}, { path: socketPath }] : [{}]) {
          const reply = await exchange(port, 'zPING\0', {
            timeoutMs: 1000,
            done: (r) => r.includes('\0'),
            ...where,
          });
          if (reply !== 'PONG\0') return reply;
        }
        return true;
      },
      startTimeoutMs: opts.startTimeoutMs ?? 20_000,
    });
    const clamd = new LocalClamd(daemon, port, dir, { configFile, logFile, socketPath }, remove);
    return await clamd.begin();
  } catch (err) {
    await remove();
    throw err;
  }
}

function clamdConf(
  port: number,
  dir: string,
  db: string,
  logFile: string,
  socketPath: string | undefined,
  opts: ClamdOptions,
): string {
  const lines = [
    `DatabaseDirectory ${db}`,
    `TCPSocket ${port}`,
    `TCPAddr ${HOST}`,
    'Foreground yes',
    `LogFile ${logFile}`,
    'LogTime yes',
    `PidFile ${path.join(dir, 'clamd.pid')}`,
    `TemporaryDirectory ${dir}`,
    // Only this database: never look for the system's (or reload it behind the test's back).
    'SelfCheck 0',
  ];
  // As root clamd drops to the `clamav` user unless told otherwise; the temp dir is root's.
  if (isRoot()) lines.push('User root');
  if (socketPath !== undefined) lines.push(`LocalSocket ${socketPath}`);
  if (opts.streamMaxLength !== undefined) lines.push(`StreamMaxLength ${opts.streamMaxLength}`);
  lines.push(...(opts.extraConfig ?? []));
  return `${lines.join('\n')}\n`;
}

class LocalClamd extends DaemonHandle implements Clamd {
  readonly configFile: string;
  readonly logFile: string;
  readonly socketPath: string | undefined;

  constructor(
    daemon: DaemonProcess,
    port: number,
    dir: string,
    files: { configFile: string; logFile: string; socketPath: string | undefined },
    remove: () => Promise<void>,
  ) {
    super(daemon, { name: 'clamd', port, dir, remove });
    this.configFile = files.configFile;
    this.logFile = files.logFile;
    this.socketPath = files.socketPath;
  }
}

/**
 * Scans `data` with clamd's INSTREAM command (`zINSTREAM\0`, 4-byte big-endian length-prefixed
 * chunks, a zero-length chunk to end) and resolves with clamd's answer without the trailing
 * NUL: `stream: OK`, `stream: <name> FOUND`, `INSTREAM size limit exceeded. ERROR`, or a
 * description of a failure (`error: …`, `timeout …`); never rejects. A test helper, not a
 * production client.
 *
 * Chunks are written one at a time, waiting for the socket to drain, and writing stops as soon
 * as clamd answers: past StreamMaxLength clamd answers and closes with the rest unread, and a
 * client still writing then gets EPIPE / ECONNRESET, which can hide the answer. (A single
 * chunk bigger than the limit can still end that way: real clients must expect it too.)
 */
export function clamdInstream(
  port: number,
  data: string | Buffer,
  opts: { chunkSize?: number; timeoutMs?: number; host?: string } = {},
): Promise<string> {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const chunkSize = Math.max(1, opts.chunkSize ?? 64 * 1024);
  return new Promise((resolve) => {
    const socket = net.connect({ host: opts.host ?? HOST, port });
    let reply = '';
    let settled = false;
    const finish = (result: string) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(result.replace(/\0$/, ''));
    };
    const answered = () => settled || reply.length > 0;
    socket.setTimeout(opts.timeoutMs ?? 10_000, () => finish(`timeout (got ${JSON.stringify(reply)})`));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\0')) finish(reply);
    });
    socket.on('end', () => finish(reply));
    socket.on('error', (err) => finish(reply || `error: ${err.message}`));
    const write = (buf: Buffer) =>
      new Promise<void>((done) => {
        if (socket.write(buf)) done();
        else {
          const settle = () => {
            socket.off('drain', settle);
            socket.off('close', settle);
            done();
          };
          socket.once('drain', settle);
          socket.once('close', settle);
        }
      });
    socket.once('connect', async () => {
      await write(Buffer.from('zINSTREAM\0'));
      for (let offset = 0; offset < body.length && !answered(); offset += chunkSize) {
        const chunk = body.subarray(offset, offset + chunkSize);
        const length = Buffer.alloc(4);
        length.writeUInt32BE(chunk.length);
        await write(Buffer.concat([length, chunk]));
      }
      if (!answered()) await write(Buffer.alloc(4));
    });
  });
}
