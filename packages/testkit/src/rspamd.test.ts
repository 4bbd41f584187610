import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { groupMembers } from './daemon.js';
import { type DnsServer, startDns } from './dns.js';
import { GTUBE, RSPAMD_GTUBE, type Rspamd, readRspamdLog, rspamdCheck, startRspamd } from './rspamd.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function message(body: string, subject = 'test'): string {
  return [
    'From: Alice <alice@sender.test>',
    'To: Bob <bob@receiver.test>',
    `Subject: ${subject}`,
    'Message-ID: <20261203120000.1@sender.test>',
    'Date: Thu, 03 Dec 2026 12:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    body,
    '',
  ].join('\r\n');
}

/** The nameservers of /etc/resolv.conf: rspamd must never use them. */
function systemNameservers(): string[] {
  if (!existsSync('/etc/resolv.conf')) return [];
  return readFileSync('/etc/resolv.conf', 'utf8')
    .split('\n')
    .map((line) => /^\s*nameserver\s+(\S+)/.exec(line)?.[1])
    .filter((ns): ns is string => ns !== undefined && !ns.startsWith('127.'));
}

/** rspamd writes its log in the background: polls (bounded) for the line that mentions `needle`. */
async function waitForLogLine(rspamd: Rspamd, needle: string, timeoutMs = 5000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = (await readRspamdLog(rspamd))
      .split('\n')
      .find((l) => l.includes(needle) && l.includes('dns req:'));
    if (line) return line;
    if (Date.now() > deadline)
      throw new Error(`no log line for ${needle} within ${timeoutMs} ms\n${rspamd.logTail()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('startRspamd', () => {
  let dns: DnsServer;
  let rspamd: Rspamd;
  let startedInMs = 0;

  beforeAll(async () => {
    dns = await startDns({});
    const t0 = performance.now();
    rspamd = await startRspamd({ dnsServer: dns.server });
    startedInMs = performance.now() - t0;
  });

  afterAll(async () => {
    await rspamd?.stop();
    await dns?.close();
  });

  it('listens on loopback ports and answers /ping', async () => {
    expect(rspamd.host).toBe('127.0.0.1');
    expect(rspamd.controllerPort).not.toBe(rspamd.port);
    expect(alive(rspamd.pid)).toBe(true);
    const res = await fetch(`${rspamd.url}/ping`);
    expect((await res.text()).trim()).toBe('pong');
    const stat = await fetch(`http://127.0.0.1:${rspamd.controllerPort}/stat`);
    expect(stat.status).toBe(200);
    // Cold start (empty DBDIR) is ~13 s; the shared DBDIR makes later ones fast.
    expect(startedInMs).toBeLessThan(45_000);
  });

  it('rejects GTUBE', async () => {
    expect(RSPAMD_GTUBE).toBe(GTUBE);
    expect(GTUBE).toHaveLength(68);
    const result = await rspamdCheck(rspamd.port, message(`This is a test.\r\n${GTUBE}\r\n`), {
      headers: { IP: '127.0.0.1', From: 'alice@sender.test', Rcpt: 'bob@receiver.test', Helo: 'sender.test' },
    });
    expect(result.action).toBe('reject');
    expect(Object.keys(result.symbols)).toContain('GTUBE');
  });

  it('gives a plain clean message "no action"', async () => {
    const result = await rspamdCheck(
      rspamd.port,
      message('Hello Bob,\r\n\r\nlunch tomorrow at noon? The usual place.\r\n\r\nAlice', 'lunch'),
      {
        headers: {
          IP: '127.0.0.1',
          From: 'alice@sender.test',
          Rcpt: 'bob@receiver.test',
          Helo: 'sender.test',
        },
      },
    );
    expect(result.action).toBe('no action');
    expect(result.score).toBeLessThan(result.required_score);
  });

  it('resolves only through the test DNS server, and fetches no remote maps', async () => {
    // A message from a remote address with names to check: SPF, DMARC, HELO, rDNS, ASN lookups.
    const before = dns.queries.length;
    const mid = `dns-${Date.now()}@sender.test`;
    const result = await rspamdCheck(
      rspamd.port,
      message('Hello Bob, see you tomorrow.').replace(/^Message-ID: .*$/m, `Message-ID: <${mid}>`),
      {
        headers: {
          IP: '192.0.2.10',
          From: 'alice@sender.test',
          Rcpt: 'bob@receiver.test',
          Helo: 'mail.sender.test',
        },
      },
    );
    expect(result.action).not.toBe('reject');
    const asked = dns.queries.slice(before).map((q) => `${q.name}/${q.type}`);
    expect(asked).toContain('sender.test/TXT'); // SPF
    expect(asked).toContain('10.2.0.192.in-addr.arpa/PTR');
    // rspamd logs how many DNS requests the scan made: every one of them reached the test's server.
    const line = await waitForLogLine(rspamd, mid);
    const made = Number(/dns req: (\d+)/.exec(line)?.[1]);
    expect(made).toBeGreaterThan(0);
    expect(asked).toHaveLength(made);

    const log = await readRspamdLog(rspamd);
    expect(log).not.toMatch(/resolv\.conf/);
    for (const ns of systemNameservers()) expect(log).not.toContain(ns);
    // No map fetch from rspamd.com (they would show up as map DNS callbacks), no fuzzy_check.
    expect(log).not.toMatch(/maps\.rspamd\.com|updates\.rspamd\.com|rspamd_map_dns_callback|https?:\/\//);
    expect(log).not.toMatch(/fuzzy_check.*added|init lua module fuzzy/);
  });

  it('pauses (no answer while stopped) and resumes', async () => {
    rspamd.pause();
    try {
      await expect(fetch(`${rspamd.url}/ping`, { signal: AbortSignal.timeout(500) })).rejects.toThrow();
    } finally {
      rspamd.resume();
    }
    expect((await (await fetch(`${rspamd.url}/ping`)).text()).trim()).toBe('pong');
  });

  it('restarts after a kill on the same ports, fast with the shared DBDIR', async () => {
    const before = rspamd.pid;
    await rspamd.kill();
    expect(alive(before)).toBe(false);
    await expect(fetch(`${rspamd.url}/ping`, { signal: AbortSignal.timeout(500) })).rejects.toThrow();
    const t0 = performance.now();
    await rspamd.restart();
    const warmMs = performance.now() - t0;
    expect(rspamd.pid).not.toBe(before);
    expect(warmMs).toBeLessThan(10_000);
    const result = await rspamdCheck(rspamd.port, message(GTUBE));
    expect(result.action).toBe('reject');
  });

  it('serialises starts on the shared DBDIR, and takes over a stale start lock', async () => {
    const lock = path.join(rspamd.dbDir, '.moat-start.lock');
    // A lock left by a process that is gone (a PID that cannot exist).
    mkdirSync(lock, { recursive: true });
    writeFileSync(path.join(lock, 'pid'), '2147483646');
    const both = await Promise.all([
      startRspamd({ dnsServer: dns.server }),
      startRspamd({ dnsServer: dns.server }),
    ]);
    try {
      expect(existsSync(lock)).toBe(false);
      // Nothing moved aside is left behind.
      expect(readdirSync(rspamd.dbDir).filter((name) => name.startsWith('.moat-start.lock'))).toEqual([]);
      for (const other of both) expect((await rspamdCheck(other.port, message(GTUBE))).action).toBe('reject');
    } finally {
      await Promise.all(both.map((other) => other.stop()));
    }
  });

  it('refuses a DNS server that is not on loopback', async () => {
    await expect(startRspamd({ dnsServer: '8.8.8.8:53' })).rejects.toThrow(/loopback/);
  });

  it('stop() ends every rspamd process and removes its directory', async () => {
    const { pid, dir } = rspamd;
    await rspamd.stop();
    expect(alive(pid)).toBe(false);
    // No worker of its process group is left.
    expect(groupMembers(pid)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });
});
