/**
 * infra/haproxy/haproxy.cfg as it is (only its ${VARIABLES} set: loopback addresses, free ports,
 * short check intervals), run by a real `haproxy` in front of two real `moat edge` processes
 * that share one real Redis. The edges take PROXY v2 from 127.0.0.1 (HAProxy) only:
 * - the relay decision follows the client address HAProxy passes on, not HAProxy's own;
 * - a client that reaches an edge directly cannot claim an address with a PROXY header;
 * - an edge SIGKILLed under load loses nothing it acknowledged, and HAProxy's SMTP health
 *   check (through the PROXY protocol) takes it out, so new sessions go to the other edge.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect, Spool, whenReady } from '@moat/spool';
import { type DnsServer, freePort, RawSmtp, type RedisServer, startDns, startRedis } from '@moat/testkit';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type MoatProcess, startMoat } from './moat-process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CFG = path.join(ROOT, 'infra/haproxy/haproxy.cfg');
const PREFIX = 'haproxy';
/** The only client allowed to relay (outbound.clients); 127.0.0.3 is anybody on the Internet. */
const INSIDE = '127.0.0.2';
const OUTSIDE = '127.0.0.3';

let dir: string;
let redis: RedisServer;
let dns: DnsServer;
let producer: ReturnType<typeof connect>;
let spool: Spool;
let haproxy: Haproxy;
const edges: Record<'edge1' | 'edge2', { moat: MoatProcess; port: number }> = {} as never;

interface Haproxy {
  readonly port: number;
  readonly pid: number;
  readonly socket: string;
  readonly output: () => string;
  stop(): Promise<void>;
}

/**
 * `haproxy -W -db -f infra/haproxy/haproxy.cfg -p <pid file>` (master-worker in the foreground, as
 * the official image runs it) with `env` for its variables; ready when both edges are UP.
 */
async function startHaproxy(env: Record<string, string>, socket: string, pidFile: string): Promise<Haproxy> {
  const port = Number(env.SMTP_BIND?.split(':').pop());
  const child: ChildProcess = spawn('haproxy', ['-W', '-db', '-f', CFG, '-p', pidFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) =>
      reject(new Error(`haproxy did not start (${err.message}): apt-get install -y haproxy`)),
    );
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await spawned;
  const pid = child.pid ?? -1;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(pid, 'SIGTERM');
    const timer = setTimeout(() => process.kill(pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const proxy = { port, pid, socket, output: () => output, stop };
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}:\n${output}`);
    const status = await serverStatus(socket).catch(() => ({}) as Record<string, string>);
    if (status.edge1 === 'UP' && status.edge2 === 'UP') return proxy;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`haproxy: edges not UP within 10 s (${JSON.stringify(status)}):\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** "show stat" on HAProxy's runtime API: server name → status (UP, DOWN, "UP 1/2", …). */
function serverStatus(socket: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const conn = net.connect({ path: socket });
    let text = '';
    conn.setTimeout(2000, () => conn.destroy(new Error('stats socket timeout')));
    conn.on('data', (d: Buffer) => {
      text += d.toString();
    });
    conn.once('error', reject);
    conn.once('connect', () => conn.write('show stat\n'));
    conn.once('close', () => {
      const [header, ...rows] = text.trim().split('\n');
      const columns = (header ?? '').replace(/^# /, '').split(',');
      const [px, sv, st] = ['pxname', 'svname', 'status'].map((c) => columns.indexOf(c));
      const status: Record<string, string> = {};
      for (const row of rows) {
        const cells = row.split(',');
        if (cells[px ?? -1] === 'edges') status[cells[sv ?? -1] ?? ''] = cells[st ?? -1] ?? '';
      }
      resolve(status);
    });
  });
}

async function edge(name: 'edge1' | 'edge2') {
  const port = await freePort();
  const moat = await startMoat(
    'edge',
    {
      hostname: 'relay.test',
      dataDir: dir,
      redis: { url: redis.url, prefix: PREFIX },
      smtp: {
        listen: [`127.0.0.1:${port}`],
        // Which edge a session reached, as the client sees it: "220 relay.test ESMTP Moat edge1".
        banner: `Moat ${name}`,
        proxyProtocol: true,
        trustedProxies: ['127.0.0.1/32'],
      },
      inbound: { domains: { 'example.com': '[127.0.0.1]:9' } },
      outbound: { clients: [`${INSIDE}/32`] },
      dns: { servers: [dns.server], timeout: '1s' },
      admin: { listen: null },
    },
    dir,
    name,
  );
  return { moat, port };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'moat-haproxy-'));
  [redis, dns] = await Promise.all([startRedis({ appendfsync: 'always' }), startDns()]);
  producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer);
  spool = new Spool({ redis: producer, prefix: PREFIX, timeout: 5000, ack: 'local', replicas: 1 });
  const [one, two] = await Promise.all([edge('edge1'), edge('edge2')]);
  edges.edge1 = one;
  edges.edge2 = two;
  await Promise.all([one.moat.waitForEvent('moat.ready'), two.moat.waitForEvent('moat.ready')]);
  const [port, unusedDns] = await Promise.all([freePort(), freePort()]);
  haproxy = await startHaproxy(
    {
      SMTP_BIND: `127.0.0.1:${port}`,
      EDGE1: `127.0.0.1:${one.port}`,
      EDGE2: `127.0.0.1:${two.port}`,
      CHECK_INTER: '200ms',
      CHECK_DOWNINTER: '200ms',
      HAPROXY_STATS_SOCKET: path.join(dir, 'haproxy.sock'),
      // The edges are IP addresses: nothing to resolve, and nothing answers here anyway.
      HAPROXY_DNS: `127.0.0.1:${unusedDns}`,
    },
    path.join(dir, 'haproxy.sock'),
    path.join(dir, 'haproxy.pid'),
  );
}, 60_000);

afterAll(async () => {
  await haproxy?.stop();
  await Promise.all(Object.values(edges).map((e) => e.moat.stop()));
  await spool?.close();
  producer?.disconnect();
  await Promise.all([redis?.stop(), dns?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A session through HAProxy from `from`; resolves with the edge that greeted. */
async function viaHaproxy(from: string): Promise<{ c: RawSmtp; edge: string }> {
  const c = await RawSmtp.connect({
    port: haproxy.port,
    localAddress: from,
    greeting: false,
    timeoutMs: 5000,
  });
  try {
    const greeting = await c.reply();
    const edge = /^220 relay\.test ESMTP Moat (edge\d)$/.exec(greeting)?.[1];
    if (!edge) throw new Error(`greeting: ${greeting}`);
    expect(await c.cmd('EHLO client.test')).toMatch(/^250/);
    return { c, edge };
  } catch (err) {
    c.destroy();
    throw err;
  }
}

const queueId = (reply: string) => /^250 2\.0\.0 Ok: queued as (\S+)$/.exec(reply)?.[1] ?? null;

describe('through infra/haproxy/haproxy.cfg', () => {
  test('the pid file is the master’s, and both edges passed the SMTP health check through PROXY v2', async () => {
    expect(Number((await readFile(path.join(dir, 'haproxy.pid'), 'utf8')).trim())).toBe(haproxy.pid);
    expect(await serverStatus(haproxy.socket)).toEqual({ edge1: 'UP', edge2: 'UP', BACKEND: 'UP' });
  });

  test('relay follows the client address in the PROXY v2 header: outside refused, inside relays', async () => {
    const outside = await viaHaproxy(OUTSIDE);
    expect(await outside.c.cmd('MAIL FROM:<someone@elsewhere.test>')).toMatch(/^250/);
    expect(await outside.c.cmd('RCPT TO:<victim@elsewhere.test>')).toBe('550 5.7.1 Relaying denied');
    // The same client may still send to our own domain: it is refused as a relay, not as a peer.
    expect(await outside.c.cmd('RCPT TO:<alice@example.com>')).toMatch(/^250/);
    const inboundId = queueId(await outside.c.data('Subject: in\r\n\r\nhello\r\n'));
    outside.c.destroy();

    const inside = await viaHaproxy(INSIDE);
    expect(await inside.c.cmd('MAIL FROM:<alice@example.com>')).toMatch(/^250/);
    expect(await inside.c.cmd('RCPT TO:<friend@elsewhere.test>')).toMatch(/^250/);
    const outboundId = queueId(await inside.c.data('Subject: out\r\n\r\nhello\r\n'));
    inside.c.destroy();

    // What Redis holds names the real clients, not HAProxy (127.0.0.1).
    expect(inboundId).not.toBeNull();
    expect(outboundId).not.toBeNull();
    const received = async (id: string | null) =>
      ((await spool.readBody(id ?? '')) ?? Buffer.alloc(0)).toString('latin1').split('\r\n')[0];
    expect(await received(inboundId)).toMatch(/^Received: from client\.test \(unknown \[127\.0\.0\.3\]\)/);
    expect(await received(outboundId)).toMatch(/^Received: from client\.test \(unknown \[127\.0\.0\.2\]\)/);
  });

  test('a PROXY header straight to an edge from an untrusted address is refused before the greeting', async () => {
    const v1 = `PROXY TCP4 ${INSIDE} 127.0.0.1 40000 25\r\n`;
    // v2 PROXY TCP4 INSIDE → 127.0.0.1, 40000 → 25
    const v2 = Buffer.concat([
      Buffer.from([
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12,
      ]),
      Buffer.from([127, 0, 0, 2, 127, 0, 0, 1, 0x9c, 0x40, 0, 25]),
    ]);
    for (const preamble of [v1, v2]) {
      const c = await RawSmtp.connect({
        port: edges.edge1.port,
        localAddress: '127.0.0.4',
        preamble,
        greeting: false,
        timeoutMs: 5000,
      });
      await expect(c.reply()).rejects.toThrow(/connection closed while waiting for a reply \(had ""\)/);
      c.destroy();
    }
    // The same v2 header from the trusted address (where HAProxy connects from) is believed.
    const trusted = await RawSmtp.connect({ port: edges.edge1.port, preamble: v2, timeoutMs: 5000 });
    await trusted.cmd('EHLO client.test');
    await trusted.cmd('MAIL FROM:<alice@example.com>');
    expect(await trusted.cmd('RCPT TO:<friend@elsewhere.test>')).toMatch(/^250/);
    trusted.destroy();
  });

  test('an edge SIGKILLed under load: nothing acknowledged is lost, new sessions go to the other edge', async () => {
    const CLIENTS = 6;
    const body = (messageId: string) =>
      `Message-ID: <${messageId}>\r\nSubject: load\r\n\r\n${`${'y'.repeat(76)}\r\n`.repeat(200)}`;
    interface Attempt {
      readonly started: number;
      readonly edge: string | null;
      readonly messageId: string;
      readonly id: string | null;
      readonly error?: string;
    }
    const attempts: Attempt[] = [];
    let serial = 0;
    let stop = false;
    const client = async (n: number) => {
      while (!stop) {
        const messageId = `load-${n}-${serial++}@client.test`;
        const started = Date.now();
        let edge: string | null = null;
        let session: RawSmtp | null = null;
        try {
          const s = await viaHaproxy(OUTSIDE);
          session = s.c;
          edge = s.edge;
          const reply = await s.c.send('sender@elsewhere.test', ['alice@example.com'], body(messageId));
          const id = queueId(reply);
          attempts.push({ started, edge, messageId, id, ...(id ? {} : { error: reply }) });
          await s.c.quit({ wait: false });
        } catch (err) {
          attempts.push({ started, edge, messageId, id: null, error: (err as Error).message });
          session?.destroy();
        }
      }
    };
    const acknowledged = () => attempts.filter((a) => a.id !== null).length;
    const until = async (what: string, done: () => boolean | Promise<boolean>, ms: number) => {
      const deadline = Date.now() + ms;
      while (!(await done())) {
        if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    const running = Array.from({ length: CLIENTS }, (_, n) => client(n));
    let killedAt = 0;
    let downAt = 0;
    try {
      await until('40 acknowledged before the kill', () => acknowledged() >= 40, 10_000);
      killedAt = Date.now();
      await edges.edge1.moat.kill();
      await until(
        'HAProxy marks edge1 DOWN',
        async () => (await serverStatus(haproxy.socket)).edge1 === 'DOWN',
        5000,
      );
      downAt = Date.now();
      // Counted as the assertions below count them: sessions started after DOWN (one started
      // before it and answered after would make the wait end one short).
      await until(
        '40 sessions started after edge1 is DOWN acknowledged',
        () => attempts.filter((a) => a.started > downAt && a.id !== null).length >= 40,
        10_000,
      );
    } finally {
      stop = true;
      await Promise.all(running);
    }

    // Every 250 is in Redis: its body (with its own Message-ID) and its entry in the messages set.
    const acked = attempts.filter((a) => a.id !== null);
    let lost = 0;
    for (const a of acked) {
      const stored = (await spool.readBody(a.id ?? ''))?.toString('latin1') ?? '';
      const listed = await producer.zscore(spool.keys.messages, a.id ?? '');
      if (!stored.includes(`Message-ID: <${a.messageId}>`) || listed === null) lost++;
    }
    const failed = attempts.filter((a) => a.id === null);
    const beforeKill = attempts.filter((a) => a.started < killedAt);
    const afterDown = attempts.filter((a) => a.started > downAt);
    console.log(
      `haproxy chaos: ${attempts.length} sent / ${acked.length} acknowledged / ${lost} lost; ` +
        `${failed.length} not acknowledged (sessions cut by the kill); edge1 DOWN ${downAt - killedAt} ms after the kill; ` +
        `before the kill edge1 ${beforeKill.filter((a) => a.edge === 'edge1').length} / edge2 ${beforeKill.filter((a) => a.edge === 'edge2').length} sessions, ` +
        `after DOWN edge2 ${afterDown.filter((a) => a.edge === 'edge2').length} of ${afterDown.length}`,
    );
    expect(lost).toBe(0);
    // The health check took it out (not the traffic: there is no "observe layer4").
    expect(haproxy.output()).toMatch(/Server edges\/edge1 is DOWN/);
    // Both edges took sessions before the kill (leastconn spreads them).
    expect(beforeKill.some((a) => a.edge === 'edge1')).toBe(true);
    expect(beforeKill.some((a) => a.edge === 'edge2')).toBe(true);
    // Once edge1 is DOWN, every new session reaches edge2 and is acknowledged.
    expect(afterDown.length).toBeGreaterThanOrEqual(40);
    expect(afterDown.filter((a) => a.edge !== 'edge2' || a.id === null)).toEqual([]);
    // What failed failed around the kill, never before it.
    expect(failed.filter((a) => a.started < killedAt - 2000)).toEqual([]);
  }, 30_000);
});
