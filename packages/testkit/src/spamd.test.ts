import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, groupMembers } from './daemon.js';
import { GTUBE, type Spamd, spamdRequest, startSpamd } from './spamd.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function message(body: string): string {
  return [
    'From: Alice <alice@sender.test>',
    'To: Bob <bob@receiver.test>',
    'Subject: lunch',
    'Message-ID: <20261203120000.1@sender.test>',
    'Date: Thu, 03 Dec 2026 12:00:00 +0000',
    '',
    body,
    '',
  ].join('\r\n');
}

const ping = (port: number, timeoutMs = 2000) => exchange(port, 'PING SPAMC/1.5\r\n\r\n', { timeoutMs });

describe('startSpamd', () => {
  let spamd: Spamd;
  let startedInMs = 0;

  beforeAll(async () => {
    const t0 = performance.now();
    spamd = await startSpamd();
    startedInMs = performance.now() - t0;
  });

  afterAll(async () => {
    await spamd?.stop();
  });

  it('answers PING on a loopback port', async () => {
    expect(spamd.host).toBe('127.0.0.1');
    expect(alive(spamd.pid)).toBe(true);
    expect(await ping(spamd.port)).toBe('SPAMD/1.5 0 PONG\r\n');
    expect(startedInMs).toBeLessThan(20_000);
  });

  it('finds GTUBE: CHECK says Spam: True ; 1000.0 / 5.0', async () => {
    const reply = await spamdRequest(spamd.port, 'CHECK', message(`Hello.\r\n${GTUBE}`));
    expect(reply.raw).toMatch(/^SPAMD\/1\.\d 0 EX_OK\r\n/);
    expect(reply.raw).toContain('Spam: True ; 1000.0 / 5.0');
    expect(reply).toMatchObject({ spam: true, score: 1000, threshold: 5 });
  });

  it('names GTUBE among the SYMBOLS, and passes a plain message', async () => {
    const spam = await spamdRequest(spamd.port, 'SYMBOLS', message(GTUBE));
    expect(spam.symbols).toContain('GTUBE');
    const clean = await spamdRequest(
      spamd.port,
      'SYMBOLS',
      message('Lunch tomorrow at noon? The usual place.'),
    );
    expect(clean.spam).toBe(false);
    expect(clean.score).toBeLessThan(5);
    expect(clean.symbols).not.toContain('GTUBE');
  });

  it('runs local tests only, children as a non-root user when started as root', async () => {
    const log = readFileSync(spamd.logFile, 'utf8');
    expect(log).toContain(`server started on IO::Socket::IP [127.0.0.1]:${spamd.port}`);
    const config = readFileSync(`${spamd.dir}/site/local.cf`, 'utf8');
    expect(config).toMatch(/^dns_available no$/m);
    expect(config).toMatch(/^use_bayes 0$/m);
    if (process.getuid?.() === 0) {
      expect(spamd.user).toBe('debian-spamd');
      // the scans logged by the children carry their uid
      expect(log).toMatch(/result: Y \d+ - GTUBE.*uid=\d+/);
      expect(log).not.toMatch(/uid=0,/);
    }
  });

  it('pauses (no answer while stopped) and resumes', async () => {
    spamd.pause();
    try {
      expect(await ping(spamd.port, 500)).toMatch(/^timeout/);
    } finally {
      spamd.resume();
    }
    expect(await ping(spamd.port)).toBe('SPAMD/1.5 0 PONG\r\n');
  });

  it('restarts after a kill on the same port, no child left behind', async () => {
    const before = spamd.pid;
    await spamd.kill();
    expect(alive(before)).toBe(false);
    expect(groupMembers(before)).toEqual([]); // the whole process group is gone
    expect(await ping(spamd.port, 500)).toMatch(/^error:/);
    await spamd.restart();
    expect(spamd.pid).not.toBe(before);
    expect((await spamdRequest(spamd.port, 'CHECK', message(GTUBE))).spam).toBe(true);
  });

  it('stop() ends spamd and its children and removes the directory', async () => {
    const { pid, dir } = spamd;
    await spamd.stop();
    expect(alive(pid)).toBe(false);
    expect(groupMembers(pid)).toEqual([]);
    expect(existsSync(dir)).toBe(false);
  });
});
