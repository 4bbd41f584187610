/**
 * A real OpenLDAP slapd (Debian `slapd` 2.5) on 127.0.0.1, for tests of LDAP / Active Directory
 * recipient lookups: its own slapd.conf (`-f`) and mdb database in a temp dir, one listener
 * (`-h ldap://127.0.0.1:<port>/`), in the foreground (`-d none`: no debug output, but start-up
 * errors such as "bind(6) failed errno=98" still reach stderr.log; `-d 0` would hide them),
 * stopped by PID. The system's slapd (and its /etc/ldap/slapd.d) is never touched.
 *
 * Schemas: core, cosine, inetorgperson, and MOAT_LDAP_SCHEMA, which declares Active
 * Directory's `proxyAddresses` (multi-valued, caseIgnoreMatch, directory string) and an
 * auxiliary class `moatMailRecipient` that MAY carry it, so an `inetOrgPerson` can hold
 * "SMTP:primary@…" and "smtp:secondary@…" values as in AD.
 *
 * `entries` is LDIF, checked and loaded with `slapadd` before the first start (`slaptest -u`
 * checks the config first); the suffix entry is added in front unless the LDIF has it.
 * restart() keeps the database: what was added over LDAP is still there.
 *
 * With `tls`, slapd offers StartTLS on the same port with a throw-away self-signed certificate
 * for CN=127.0.0.1 (`tlsCertificate`); with `requireTls`, every operation but StartTLS on a
 * plain connection is refused (`security tls=1`: "confidentiality required").
 *
 *
 * Start-up: about 0.2 s (slaptest, slapadd, slapd), 0.4 s with tls (openssl makes an RSA key).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeCertificate } from './certificate.js';
import { DaemonHandle, DaemonProcess, daemonBinary, exchange, type FilterDaemon, HOST } from './daemon.js';
import { leftovers } from './exit-hook.js';
import { freePort } from './ports.js';

const run = promisify(execFile);

export const SLAPD_MISSING_PACKAGE = 'slapd';

/**
 * `proxyAddresses` as Active Directory has it (same OID, 1.2.840.113556.1.2.210, so filters
 * written for AD work unchanged), and an auxiliary class to carry it on any entry.
 */
export const MOAT_LDAP_SCHEMA = `attributetype ( 1.2.840.113556.1.2.210 NAME 'proxyAddresses'
  DESC 'Active Directory: SMTP:primary and smtp:secondary addresses'
  EQUALITY caseIgnoreMatch
  SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15 )

objectclass ( 1.3.6.1.4.1.99999.1.2.1 NAME 'moatMailRecipient'
  DESC 'Moat tests: an entry that may carry proxyAddresses'
  AUXILIARY
  MAY ( proxyAddresses ) )
`;

export interface SlapdOptions {
  /** The database's suffix, default 'dc=example,dc=com'. */
  readonly suffix?: string;
  /** rootpw of `cn=admin,<suffix>`; default a random one. */
  readonly rootPassword?: string;
  /** LDIF loaded with slapadd before the first start (parents before children). */
  readonly entries: string;
  /** Offer StartTLS with a self-signed certificate. */
  readonly tls?: boolean;
  /** Refuse operations on a connection that has not done StartTLS (implies tls). */
  readonly requireTls?: boolean;
  /** How long to wait for the first bind answer, default 10 s. */
  readonly startTimeoutMs?: number;
}

export interface Slapd extends FilterDaemon {
  /** `ldap://127.0.0.1:<port>` */
  readonly url: string;
  readonly suffix: string;
  /** `cn=admin,<suffix>`, the rootdn (bypasses access control). */
  readonly rootDn: string;
  readonly rootPassword: string;
  readonly configFile: string;
  /** With tls: the PEM certificate slapd presents (self-signed, CN and IP SAN 127.0.0.1). */
  readonly tlsCertificate: string | undefined;
}

export async function startSlapd(opts: SlapdOptions): Promise<Slapd> {
  const binary = daemonBinary('slapd', SLAPD_MISSING_PACKAGE);
  const slaptest = daemonBinary('slaptest', SLAPD_MISSING_PACKAGE);
  const slapadd = daemonBinary('slapadd', SLAPD_MISSING_PACKAGE);
  const suffix = opts.suffix ?? 'dc=example,dc=com';
  const rootDn = `cn=admin,${suffix}`;
  const rootPassword = opts.rootPassword ?? randomBytes(12).toString('base64url');
  const tls = opts.tls === true || opts.requireTls === true;

  const dir = await mkdtemp(path.join(os.tmpdir(), 'moat-slapd-'));
  leftovers().dirs.add(dir);
  const remove = async () => {
    leftovers().dirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const port = await freePort();
    const db = path.join(dir, 'db');
    await mkdir(db);
    const schemaFile = path.join(dir, 'moat.schema');
    await writeFile(schemaFile, MOAT_LDAP_SCHEMA);
    const certificate = tls ? await makeCertificate(dir, HOST, `IP:${HOST}`) : undefined;
    const configFile = path.join(dir, 'slapd.conf');
    await writeFile(
      configFile,
      slapdConf({
        dir,
        db,
        schemaFile,
        suffix,
        rootDn,
        rootPassword,
        certificate,
        requireTls: opts.requireTls,
      }),
    );
    const ldif = path.join(dir, 'data.ldif');
    await writeFile(ldif, withSuffixEntry(opts.entries, suffix));
    await tool(slaptest, ['-u', '-f', configFile], dir);
    await tool(slapadd, ['-f', configFile, '-l', ldif], dir);

    const daemon = new DaemonProcess({
      name: `slapd on port ${port}`,
      binary,
      args: ['-f', configFile, '-h', `ldap://${HOST}:${port}/`, '-d', 'none'],
      dir,
      logFiles: [],
      probe: () => anonymousBind(port),
      startTimeoutMs: opts.startTimeoutMs ?? 10_000,
    });
    const slapd = new LocalSlapd(daemon, {
      port,
      dir,
      suffix,
      rootDn,
      rootPassword,
      configFile,
      tlsCertificate: certificate?.cert,
      remove,
    });
    return await slapd.begin();
  } catch (err) {
    await remove();
    throw err;
  }
}

async function tool(binary: string, args: string[], cwd: string): Promise<void> {
  try {
    await run(binary, args, { cwd, timeout: 30_000 });
  } catch (err) {
    const { stderr, stdout, message } = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(
      `${path.basename(binary)} ${args.join(' ')} failed: ${message}\n${stdout ?? ''}${stderr ?? ''}`,
    );
  }
}

interface ConfParts {
  dir: string;
  db: string;
  schemaFile: string;
  suffix: string;
  rootDn: string;
  rootPassword: string;
  certificate: { key: string; cert: string } | undefined;
  requireTls: boolean | undefined;
}

function slapdConf(c: ConfParts): string {
  const q = (value: string) => `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const lines = [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    `include ${q(c.schemaFile)}`,
    `pidfile ${q(path.join(c.dir, 'slapd.pid'))}`,
    `argsfile ${q(path.join(c.dir, 'slapd.args'))}`,
    // Debian builds the backends as modules.
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
  ];
  if (c.certificate) {
    lines.push(
      `TLSCertificateFile ${q(c.certificate.cert)}`,
      `TLSCertificateKeyFile ${q(c.certificate.key)}`,
    );
  }
  if (c.requireTls) lines.push('security tls=1');
  lines.push(
    'database mdb',
    'maxsize 104857600', // 100 MB of address space, not of disk
    `suffix ${q(c.suffix)}`,
    `rootdn ${q(c.rootDn)}`,
    `rootpw ${q(c.rootPassword)}`,
    `directory ${q(c.db)}`,
    'index objectClass eq',
    'index mail,proxyAddresses eq',
  );
  return `${lines.join('\n')}\n`;
}

/** The suffix entry for dc=…, o=… or ou=… suffixes, in front of `entries` unless they have it. */
export function withSuffixEntry(entries: string, suffix: string): string {
  const body = entries.replace(/\r\n/g, '\n').trim();
  const escaped = suffix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  if (new RegExp(`^dn:\\s*${escaped}\\s*$`, 'im').test(body)) return `${body}\n`;
  const [attribute, value] = (suffix.split(',')[0] ?? '').split('=').map((s) => s.trim());
  let entry: string[];
  switch (attribute?.toLowerCase()) {
    case 'dc':
      entry = ['objectClass: dcObject', 'objectClass: organization', `dc: ${value}`, `o: ${value}`];
      break;
    case 'o':
      entry = ['objectClass: organization', `o: ${value}`];
      break;
    case 'ou':
      entry = ['objectClass: organizationalUnit', `ou: ${value}`];
      break;
    default:
      throw new Error(
        `startSlapd: put the entry for suffix ${suffix} in entries (only dc=, o=, ou= are added)`,
      );
  }
  return `${[`dn: ${suffix}`, ...entry].join('\n')}\n\n${body}\n`;
}

/** LDAPv3 simple bind, message 1, anonymous (empty name and password). */
const ANONYMOUS_BIND = Buffer.from('300c020101600702010304008000', 'hex');

/**
 * One anonymous bind: true once slapd answers it at all (success, or 13 "confidentiality
 * required" under requireTls), otherwise what it got.
 */
async function anonymousBind(port: number): Promise<true | string> {
  const answered = (r: string) => bindResultCode(Buffer.from(r, 'latin1')) !== undefined;
  const reply = await exchange(port, ANONYMOUS_BIND, { timeoutMs: 1000, done: answered });
  if (answered(reply)) return true;
  return reply.startsWith('error:') || reply.startsWith('timeout') ? reply : `no BindResponse: ${reply}`;
}

/** The resultCode of a BindResponse ([APPLICATION 1], 0x61; first element ENUMERATED 0x0a 0x01). */
function bindResultCode(reply: Buffer): number | undefined {
  const at = reply.indexOf(0x61);
  if (at < 0) return undefined;
  const enumerated = reply.indexOf(Buffer.from([0x0a, 0x01]), at + 2);
  // After the response's own length: one byte, or up to five in the long form.
  if (enumerated < 0 || enumerated > at + 6) return undefined;
  return reply[enumerated + 2];
}

interface SlapdParts {
  port: number;
  dir: string;
  suffix: string;
  rootDn: string;
  rootPassword: string;
  configFile: string;
  tlsCertificate: string | undefined;
  remove: () => Promise<void>;
}

class LocalSlapd extends DaemonHandle implements Slapd {
  readonly url: string;
  readonly suffix: string;
  readonly rootDn: string;
  readonly rootPassword: string;
  readonly configFile: string;
  readonly tlsCertificate: string | undefined;

  constructor(daemon: DaemonProcess, parts: SlapdParts) {
    super(daemon, { name: 'slapd', port: parts.port, dir: parts.dir, remove: parts.remove });
    this.url = `ldap://${HOST}:${parts.port}`;
    this.suffix = parts.suffix;
    this.rootDn = parts.rootDn;
    this.rootPassword = parts.rootPassword;
    this.configFile = parts.configFile;
    this.tlsCertificate = parts.tlsCertificate;
  }
}
