/**
 * Test fixture (not built): a real edge on a free port in front of a real redis-server, and a
 * raw line-based SMTP client for asserting exact replies.
 */
import { type Socket, connect as tcpConnect } from 'node:net';
import { configSchema, type MoatConfigInput } from '@moat/policy';
import { connect, Spool, whenReady } from '@moat/spool';
import { type RedisServer, startRedis } from '@moat/testkit';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { type Edge, type EdgeOptions, startEdge } from './edge.js';

export interface TestEdge {
  readonly edge: Edge;
  readonly spool: Spool;
  readonly redis: Redis;
  readonly port: number;
  close(): Promise<void>;
}

let prefixes = 0;

export const BASE_CONFIG: MoatConfigInput = {
  hostname: 'relay.example.com',
  smtp: { listen: ['127.0.0.1:2525'] },
  inbound: { domains: { 'example.com': '[192.168.1.254]', 'example.org': '[192.168.1.254]:2525' } },
  outbound: { clients: ['10.99.0.0/16'] },
};

export async function startTestEdge(
  server: RedisServer,
  overrides: Partial<MoatConfigInput> = {},
  extra: Partial<EdgeOptions> = {},
): Promise<TestEdge> {
  const config = configSchema.parse({
    ...BASE_CONFIG,
    ...overrides,
    redis: { url: server.url, timeout: '1s' },
  });
  const redis = connect({ url: server.url, commandTimeout: 1000 }, 'producer');
  await whenReady(redis);
  const spool = new Spool({
    redis,
    prefix: `e${++prefixes}`,
    timeout: config.redis.timeout,
    ack: 'local',
    replicas: 1,
  });
  const log = pino({ level: process.env.MOAT_TEST_LOG ?? 'silent' });
  const edge = await startEdge({ config, spool, log, listen: [{ host: '127.0.0.1', port: 0 }], ...extra });
  return {
    edge,
    spool,
    redis,
    port: edge.addresses[0]?.port ?? 0,
    async close() {
      await edge.close(1000);
      await spool.close();
      redis.disconnect();
    },
  };
}

export { startRedis };

/** A raw SMTP client: one command, one (possibly multi-line) reply. */
export class RawClient {
  #buffer = '';
  #waiters: ((line: string) => void)[] = [];
  #lines: string[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (data: string) => {
      this.#buffer += data;
      let i = this.#buffer.indexOf('\r\n');
      while (i >= 0) {
        const line = this.#buffer.slice(0, i);
        this.#buffer = this.#buffer.slice(i + 2);
        const waiter = this.#waiters.shift();
        if (waiter) waiter(line);
        else this.#lines.push(line);
        i = this.#buffer.indexOf('\r\n');
      }
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.#waiters.splice(0)) w('(closed)');
    });
    socket.on('error', () => {});
  }

  static open(
    port: number,
    options: { greeting?: boolean; preamble?: Buffer; localAddress?: string } = {},
  ): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = tcpConnect(
        { port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) },
        async () => {
          if (options.preamble) socket.write(options.preamble);
          const client = new RawClient(socket);
          if (options.greeting !== false) await client.reply();
          resolve(client);
        },
      );
      socket.once('error', reject);
    });
  }

  #line(): Promise<string> {
    const ready = this.#lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.closed) return Promise.resolve('(closed)');
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** The next complete reply, lines joined with "\n". */
  async reply(): Promise<string> {
    const lines: string[] = [];
    for (;;) {
      const line = await this.#line();
      lines.push(line);
      if (line === '(closed)' || line[3] !== '-') return lines.join('\n');
    }
  }

  async cmd(line: string): Promise<string> {
    this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Send a whole message body after DATA's 354, dot-stuffed as a client must. */
  async data(body: string): Promise<string> {
    const go = await this.cmd('DATA');
    if (!go.startsWith('354')) return go;
    const stuffed = body.replace(/^\./gm, '..');
    this.socket.write(`${stuffed.endsWith('\r\n') ? stuffed : `${stuffed}\r\n`}.\r\n`);
    return this.reply();
  }

  close(): void {
    this.socket.destroy();
  }
}

export const MESSAGE = 'From: a@example.net\r\nTo: b@example.com\r\nSubject: test\r\n\r\nHello.\r\n';

/** Read back the queue id from a 250 reply. */
export function queueIdOf(reply: string): string {
  const m = /queued as (\S+)/.exec(reply);
  if (!m?.[1]) throw new Error(`no queue id in: ${reply}`);
  return m[1];
}
