import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { daemonBinary, exchange } from './daemon.js';
import { type Slapd, startSlapd, withSuffixEntry } from './slapd.js';

const run = promisify(execFile);

const PEOPLE = `dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: moatMailRecipient
uid: alice
cn: Alice Smith
sn: Smith
mail: alice@example.com
proxyAddresses: SMTP:alice@example.com
proxyAddresses: smtp:a.smith@example.com

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
uid: bob
cn: Bob Jones
sn: Jones
mail: bob@example.com
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface SearchOptions {
  bind?: { dn: string; password: string };
  startTls?: boolean;
  env?: Record<string, string>;
}

/** DNs that ldapsearch (ldap-utils) finds; rejects with ldapsearch's stderr when it fails. */
async function ldapsearch(slapd: Slapd, filter: string, opts: SearchOptions = {}): Promise<string[]> {
  const args = ['-x', '-LLL', '-o', 'nettimeout=5', '-H', slapd.url, '-b', slapd.suffix];
  if (opts.startTls) args.push('-ZZ');
  if (opts.bind) args.push('-D', opts.bind.dn, '-w', opts.bind.password);
  args.push(filter, 'dn');
  const { stdout } = await run('ldapsearch', args, {
    timeout: 10_000,
    env: { ...process.env, ...opts.env },
  });
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('dn: '))
    .map((line) => line.slice(4));
}

const ALICE = 'uid=alice,ou=people,dc=example,dc=com';
const BOB = 'uid=bob,ou=people,dc=example,dc=com';

describe('startSlapd', () => {
  let slapd: Slapd;
  let startedInMs = 0;

  beforeAll(async () => {
    const t0 = performance.now();
    slapd = await startSlapd({ entries: PEOPLE, rootPassword: 'root-secret' });
    startedInMs = performance.now() - t0;
  });

  afterAll(async () => {
    await slapd?.stop();
  });

  it('listens on a loopback port, with its own config, and starts quickly', () => {
    expect(slapd.host).toBe('127.0.0.1');
    expect(slapd.url).toBe(`ldap://127.0.0.1:${slapd.port}`);
    expect(slapd.suffix).toBe('dc=example,dc=com');
    expect(slapd.rootDn).toBe('cn=admin,dc=example,dc=com');
    expect(slapd.rootPassword).toBe('root-secret');
    expect(slapd.tlsCertificate).toBeUndefined();
    expect(alive(slapd.pid)).toBe(true);
    expect(readFileSync(slapd.configFile, 'utf8')).toContain(`directory "${slapd.dir}/db"`);
    expect(startedInMs).toBeLessThan(5_000);
  });

  it('finds the loaded entries by mail and by proxyAddresses, case-insensitively', async () => {
    expect(await ldapsearch(slapd, '(mail=alice@example.com)')).toEqual([ALICE]);
    expect(await ldapsearch(slapd, '(mail=BOB@Example.COM)')).toEqual([BOB]);
    // caseIgnoreMatch: "smtp:" finds the primary "SMTP:" value and the secondary "smtp:" one.
    expect(await ldapsearch(slapd, '(proxyAddresses=smtp:alice@example.com)')).toEqual([ALICE]);
    expect(await ldapsearch(slapd, '(proxyAddresses=SMTP:A.Smith@example.com)')).toEqual([ALICE]);
    expect(await ldapsearch(slapd, '(proxyAddresses=smtp:bob@example.com)')).toEqual([]);
    expect(await ldapsearch(slapd, '(mail=nobody@example.com)')).toEqual([]);
    // The suffix entry was added in front of the LDIF.
    expect(await ldapsearch(slapd, '(objectClass=dcObject)')).toEqual(['dc=example,dc=com']);
  });

  it('binds as the rootdn with its password, and refuses a wrong one', async () => {
    const bind = { dn: slapd.rootDn, password: slapd.rootPassword };
    expect(await ldapsearch(slapd, '(uid=bob)', { bind })).toEqual([BOB]);
    await expect(ldapsearch(slapd, '(uid=bob)', { bind: { ...bind, password: 'wrong' } })).rejects.toThrow(
      /Invalid credentials \(49\)/,
    );
  });

  it('pauses (SIGSTOP: connects but no answer) and resumes', async () => {
    const bind = Buffer.from('300c020101600702010304008000', 'hex');
    const answered = (r: string) => r.length >= 14; // the whole BindResponse
    slapd.pause();
    try {
      expect(await exchange(slapd.port, bind, { timeoutMs: 200, done: answered })).toMatch(/^timeout/);
    } finally {
      slapd.resume();
    }
    // On an open connection, a request written right after pause(), 20 times: pause() must
    // not return before every thread has stopped (without waiting, one of slapd's threads still
    // answered in about half of the tries).
    const socket = net.connect({ host: slapd.host, port: slapd.port });
    try {
      await once(socket, 'connect');
      const replies: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => replies.push(chunk));
      const received = () => Buffer.concat(replies).length;
      const until = async (bytes: number, ms: number) => {
        const deadline = Date.now() + ms;
        while (received() < bytes && Date.now() < deadline) await sleep(5);
        return received();
      };
      for (let i = 0; i < 20; i++) {
        replies.length = 0;
        socket.write(bind);
        expect(await until(14, 1000)).toBe(14);
        replies.length = 0;
        slapd.pause();
        try {
          socket.write(bind);
          expect(await until(14, 50)).toBe(0);
        } finally {
          slapd.resume();
        }
        expect(await until(14, 1000)).toBe(14); // answered once resumed
      }
    } finally {
      socket.destroy();
    }
    expect(await ldapsearch(slapd, '(uid=alice)')).toEqual([ALICE]);
  });

  it('restart() keeps the database: an entry added over LDAP is still there', async () => {
    const carol = 'uid=carol,ou=people,dc=example,dc=com';
    const ldif = `dn: ${carol}\nobjectClass: inetOrgPerson\nobjectClass: moatMailRecipient\nuid: carol\ncn: Carol\nsn: C\nmail: carol@example.com\nproxyAddresses: SMTP:carol@example.com\n`;
    const add = run('ldapadd', ['-x', '-H', slapd.url, '-D', slapd.rootDn, '-w', slapd.rootPassword], {
      timeout: 10_000,
    });
    add.child.stdin?.end(ldif);
    await add;
    expect(await ldapsearch(slapd, '(proxyAddresses=smtp:carol@example.com)')).toEqual([carol]);

    const before = slapd.pid;
    await slapd.restart();
    expect(slapd.pid).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect(await ldapsearch(slapd, '(proxyAddresses=smtp:carol@example.com)')).toEqual([carol]);
    expect(await ldapsearch(slapd, '(mail=alice@example.com)')).toEqual([ALICE]);
  });

  it('restarts after a kill on the same port, with the same data', async () => {
    const before = slapd.pid;
    await slapd.kill();
    expect(alive(before)).toBe(false);
    expect(slapd.running).toBe(false);
    await expect(ldapsearch(slapd, '(uid=alice)')).rejects.toThrow(/Can't contact LDAP server/);
    await slapd.restart();
    expect(slapd.pid).not.toBe(before);
    expect(await ldapsearch(slapd, '(uid=alice)')).toEqual([ALICE]);
  });

  it('names the Debian package when a binary is missing', () => {
    expect(() => daemonBinary('slapd-not-here', 'slapd', '/nonexistent')).toThrow(
      /install the Debian package `slapd`/,
    );
  });

  it('stop() ends the process and removes its directory', async () => {
    const { pid, dir } = slapd;
    await slapd.stop();
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await slapd.stop(); // idempotent
    await expect(slapd.restart()).rejects.toThrow(/was stopped/);
  });
});

describe('startSlapd with requireTls', () => {
  let slapd: Slapd;

  beforeAll(async () => {
    slapd = await startSlapd({ entries: PEOPLE, requireTls: true, suffix: 'dc=example,dc=com' });
  });

  afterAll(async () => {
    await slapd?.stop();
  });

  it('answers after StartTLS with a certificate for 127.0.0.1, refuses plain operations', async () => {
    const cert = slapd.tlsCertificate;
    expect(cert).toBeDefined();
    const verified = { LDAPTLS_CACERT: cert ?? '', LDAPTLS_REQCERT: 'demand' };
    expect(await ldapsearch(slapd, '(mail=alice@example.com)', { startTls: true, env: verified })).toEqual([
      ALICE,
    ]);
    await expect(ldapsearch(slapd, '(mail=alice@example.com)')).rejects.toThrow(/Confidentiality required/i);
  });
});

describe('withSuffixEntry', () => {
  it('adds the suffix entry unless the LDIF has it', () => {
    expect(withSuffixEntry('dn: ou=x,o=corp\nou: x\n', 'o=corp')).toBe(
      'dn: o=corp\nobjectClass: organization\no: corp\n\ndn: ou=x,o=corp\nou: x\n',
    );
    const own = 'dn: dc=example,dc=com\nobjectClass: domain\ndc: example\n';
    expect(withSuffixEntry(own, 'dc=example,dc=com')).toBe(own);
    expect(() => withSuffixEntry('', 'cn=odd')).toThrow(/put the entry for suffix/);
  });
});
