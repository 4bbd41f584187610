import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLAMD_EICAR_SIGNATURE, type Clamd, clamdInstream, EICAR, startClamd } from './clamd.js';
import { daemonBinary, exchange } from './daemon.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startClamd', () => {
  let clamd: Clamd;
  let startedInMs = 0;

  beforeAll(async () => {
    const t0 = performance.now();
    clamd = await startClamd({ streamMaxLength: '1M' });
    startedInMs = performance.now() - t0;
  });

  afterAll(async () => {
    await clamd?.stop();
  });

  it('answers zPING on a loopback port and starts quickly', async () => {
    expect(clamd.host).toBe('127.0.0.1');
    expect(clamd.port).toBeGreaterThan(0);
    expect(alive(clamd.pid)).toBe(true);
    expect(await exchange(clamd.port, 'zPING\0', { done: (r) => r.includes('\0') })).toBe('PONG\0');
    expect(startedInMs).toBeLessThan(10_000);
    expect(readFileSync(clamd.configFile, 'utf8')).toContain('StreamMaxLength 1M');
  });

  it('finds EICAR in an INSTREAM, under the documented signature name', async () => {
    expect(EICAR).toHaveLength(68);
    expect(CLAMD_EICAR_SIGNATURE).toBe('Eicar-Test-Signature.UNOFFICIAL');
    expect(await clamdInstream(clamd.port, EICAR)).toBe(`stream: ${CLAMD_EICAR_SIGNATURE} FOUND`);
    // In small chunks too: clamd reassembles the stream.
    expect(await clamdInstream(clamd.port, EICAR, { chunkSize: 7 })).toBe(
      `stream: ${CLAMD_EICAR_SIGNATURE} FOUND`,
    );
  });

  it('passes a clean text', async () => {
    expect(await clamdInstream(clamd.port, 'Subject: hello\r\n\r\nJust a plain message.\r\n')).toBe(
      'stream: OK',
    );
  });

  it('refuses a stream bigger than streamMaxLength', async () => {
    const big = Buffer.alloc(1024 * 1024 + 4096, 'a');
    expect(await clamdInstream(clamd.port, big)).toBe('INSTREAM size limit exceeded. ERROR');
  });

  it('pauses (SIGSTOP: connects but no answer) and resumes', async () => {
    clamd.pause();
    try {
      const reply = await exchange(clamd.port, 'zPING\0', { timeoutMs: 500, done: (r) => r.includes('\0') });
      expect(reply).toMatch(/^timeout/);
    } finally {
      clamd.resume();
    }
    expect(await exchange(clamd.port, 'zPING\0', { done: (r) => r.includes('\0') })).toBe('PONG\0');
  });

  it('restarts after a kill on the same port with a new PID', async () => {
    const before = clamd.pid;
    await clamd.kill();
    expect(alive(before)).toBe(false);
    expect(clamd.running).toBe(false);
    expect((await exchange(clamd.port, 'zPING\0', { timeoutMs: 500 })).startsWith('error:')).toBe(true);
    await clamd.restart();
    expect(clamd.pid).not.toBe(before);
    expect(await clamdInstream(clamd.port, EICAR)).toBe(`stream: ${CLAMD_EICAR_SIGNATURE} FOUND`);
  });

  it('names the Debian package when a binary is missing', () => {
    expect(() => daemonBinary('clamd-not-here', 'clamav-daemon', '/nonexistent')).toThrow(
      /install the Debian package `clamav-daemon`/,
    );
  });

  it('stop() ends the process and removes its directory', async () => {
    const { pid, dir } = clamd;
    await clamd.stop();
    expect(alive(pid)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    await clamd.stop(); // idempotent
  });
});
