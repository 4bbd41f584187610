/**
 * A private Postfix instance for interop tests and benchmarks: its own config, queue and data directories in
 * a temporary directory, smtpd on a free loopback port with STARTTLS (a throw-away self-signed
 * certificate), no chroot, relaying the domains it is told about to `relayhost`. Started with
 * `postfix -c DIR start`, stopped with `postfix -c DIR stop` (only this instance).
 */
import { execFile } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeCertificate } from './certificate.js';
import { daemonBinary } from './daemon.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface PostfixOptions {
  /** Where Postfix sends everything it accepts: "[127.0.0.1]:port". */
  readonly relayhost: string;
  /** Domains Postfix relays for anyone; other recipients get 554 5.7.1 Relay access denied. */
  readonly relayDomains: readonly string[];
  /** Listen on this port (default: a free one). */
  readonly port?: number;
  /** Postfix's default_process_limit (its default: 100 smtpd processes). */
  readonly processLimit?: number;
}

export interface Postfix {
  readonly port: number;
  readonly dir: string;
  /** The master process's PID (its children come and go). */
  pid(): Promise<number>;
  maillog(): Promise<string>;
  stop(): Promise<void>;
}

const MASTER_CF = `
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`;

export async function startPostfix(options: PostfixOptions): Promise<Postfix> {
  if (process.getuid?.() !== 0) throw new Error('a private Postfix instance needs root (postfix start)');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'moat-postfix-'));
  await chmod(dir, 0o755); // the postfix user must reach data/ and queue/
  const etc = path.join(dir, 'etc');
  await Promise.all(['etc', 'queue', 'data'].map((d) => mkdir(path.join(dir, d))));
  const { uid } = await postfixUser();
  await chown(path.join(dir, 'data'), uid, -1);
  const tls = await makeCertificate(etc, 'postfix.test');
  const port = options.port ?? (await freePort());
  const main = {
    compatibility_level: '3.6',
    queue_directory: path.join(dir, 'queue'),
    data_directory: path.join(dir, 'data'),
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    myhostname: 'postfix.test',
    mydomain: 'postfix.test',
    inet_interfaces: '127.0.0.1',
    inet_protocols: 'ipv4',
    mydestination: '',
    relay_domains: options.relayDomains.join(' '),
    relayhost: options.relayhost,
    // Moat connects from 127.0.0.1 and gets no special trust: relay_domains decide.
    mynetworks: '192.0.2.0/24',
    smtpd_relay_restrictions: 'permit_mynetworks, reject_unauth_destination',
    // Load generators connect from loopback: no per-client connection limit (default 50).
    smtpd_client_event_limit_exceptions: '127.0.0.0/8',
    smtpd_tls_security_level: 'may',
    smtpd_tls_cert_file: tls.cert,
    smtpd_tls_key_file: tls.key,
    smtpd_tls_received_header: 'yes',
    smtp_dns_support_level: 'disabled',
    smtpd_peername_lookup: 'no',
    alias_maps: '',
    alias_database: '',
    local_recipient_maps: '',
    biff: 'no',
    maillog_file_prefixes: dir,
    maillog_file: path.join(dir, 'maillog'),
    syslog_name: 'postfix-moat-test',
    ...(options.processLimit ? { default_process_limit: String(options.processLimit) } : {}),
  };
  await writeFile(
    path.join(etc, 'main.cf'),
    Object.entries(main)
      .map(([k, v]) => `${k} = ${v}\n`)
      .join(''),
  );
  await writeFile(
    path.join(etc, 'master.cf'),
    `127.0.0.1:${port} inet n - n - - smtpd\n${MASTER_CF.trimStart()}`,
  );
  const maillog = () => readFile(path.join(dir, 'maillog'), 'utf8').catch(() => '(no maillog)');
  try {
    await run(daemonBinary('postfix', 'postfix'), ['-c', etc, 'start']);
  } catch (err) {
    const log = await maillog();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`postfix did not start: ${(err as Error).message}\n${log}`);
  }
  const pidFile = path.join(dir, 'queue', 'pid', 'master.pid');
  const masterPid = async () => Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  return {
    port,
    dir,
    pid: masterPid,
    maillog,
    async stop() {
      const pid = await masterPid();
      await run(daemonBinary('postfix', 'postfix'), ['-c', etc, 'stop']).catch(() => undefined);
      for (let i = 0; i < 100 && pid > 0 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
      if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function postfixUser(): Promise<{ uid: number }> {
  const { stdout } = await run('id', ['-u', 'postfix']);
  return { uid: Number(stdout.trim()) };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
