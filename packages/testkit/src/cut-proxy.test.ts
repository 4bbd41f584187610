import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLAMD_EICAR_SIGNATURE, type Clamd, clamdInstream, EICAR, startClamd } from './clamd.js';
import { startTcpProxy, type TcpProxy } from './cut-proxy.js';
import { exchange } from './daemon.js';

const zping = (port: number, timeoutMs = 2000) =>
  exchange(port, 'zPING\0', { timeoutMs, done: (r) => r.includes('\0') });

/** Connects and resolves once the connection is established (and still open). */
function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('startTcpProxy in front of a real clamd', () => {
  let clamd: Clamd;
  let proxy: TcpProxy;

  beforeAll(async () => {
    clamd = await startClamd();
    proxy = await startTcpProxy({ target: { host: clamd.host, port: clamd.port } });
  });

  afterAll(async () => {
    await proxy?.close();
    await clamd?.stop();
  });

  it("'pass' forwards both ways", async () => {
    expect(proxy.host).toBe('127.0.0.1');
    expect(proxy.port).not.toBe(clamd.port);
    expect(proxy.mode).toBe('pass');
    const before = proxy.connections;
    expect(await zping(proxy.port)).toBe('PONG\0');
    expect(await clamdInstream(proxy.port, EICAR, { chunkSize: 10 })).toBe(
      `stream: ${CLAMD_EICAR_SIGNATURE} FOUND`,
    );
    expect(proxy.connections).toBe(before + 2);
  });

  it("'cut-reply' gives the client the first byte of the reply, then closes", async () => {
    proxy.mode = 'cut-reply';
    expect(proxy.cutAfterBytes).toBe(1);
    expect(await zping(proxy.port)).toBe('P');
    proxy.cutAfterBytes = 7;
    expect(await clamdInstream(proxy.port, EICAR)).toBe('stream:');
    proxy.cutAfterBytes = 0;
    expect(await zping(proxy.port)).toBe('');
  });

  it("'refuse' accepts and resets at once", async () => {
    proxy.mode = 'refuse';
    const reply = await zping(proxy.port);
    expect(reply).toMatch(/^error: .*ECONNRESET/);
  });

  it("'garbage' answers without the target (clamd paused answers nothing)", async () => {
    proxy.mode = 'garbage';
    proxy.garbage = 'NOT CLAMD\n';
    clamd.pause();
    try {
      expect(await zping(proxy.port, 1000)).toBe('NOT CLAMD\n');
      // while in 'pass' the same request would hang on the paused daemon
      proxy.mode = 'pass';
      expect(await zping(proxy.port, 500)).toMatch(/^timeout/);
    } finally {
      clamd.resume();
    }
  });

  it('switches mode at run time, for the next connections', async () => {
    proxy.mode = 'pass';
    const held = await connect(proxy.port); // opened in 'pass'
    proxy.mode = 'garbage';
    proxy.garbage = Buffer.from('X');
    expect(await zping(proxy.port)).toBe('X');
    // The connection opened before the switch still passes through to clamd.
    const reply = await new Promise<string>((resolve) => {
      held.once('data', (d) => resolve(d.toString('latin1')));
      held.write('zPING\0');
    });
    expect(reply).toBe('PONG\0');
    held.destroy();
    proxy.mode = 'pass';
    expect(await zping(proxy.port)).toBe('PONG\0');
  });

  it('counts connections and closes the open ones on close()', async () => {
    const other = await startTcpProxy({ target: { host: clamd.host, port: clamd.port } });
    const a = await connect(other.port);
    const b = await connect(other.port);
    const closedA = new Promise((resolve) => a.once('close', resolve));
    const closedB = new Promise((resolve) => b.once('close', resolve));
    a.on('error', () => {});
    b.on('error', () => {});
    // wait until the proxy has seen both
    for (let i = 0; other.open < 2 && i < 100; i++) await new Promise((r) => setTimeout(r, 10));
    expect(other.connections).toBe(2);
    expect(other.open).toBe(2);
    await other.close();
    await Promise.all([closedA, closedB]);
    expect(await zping(other.port, 500)).toMatch(/^error: .*ECONNREFUSED/);
    await other.close(); // idempotent
  });

  it("'pass' to a target that is down: accepted, then closed", async () => {
    const dead = await startTcpProxy({ target: { host: '127.0.0.1', port: 1 } });
    try {
      expect(await zping(dead.port)).toBe('');
      expect(dead.connections).toBe(1);
    } finally {
      await dead.close();
    }
  });
});
