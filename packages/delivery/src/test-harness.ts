/**
 * Test fixtures for the delivery suites: a real redis-server per file, a DNS server and SMTP
 * sinks on loopback, a config built like a user would write it, messages queued the way the
 * edge queues them (relay decision, one job per route), and the tracking events to look at.
 */
import { Writable } from 'node:stream';
import {
  compileRelayPolicy,
  decideRecipient,
  groupByRoute,
  type MoatConfig,
  type MoatConfigInput,
  parseConfig,
} from '@moat/policy';
import {
  connect,
  type MessageMeta,
  Spool,
  searchMessageEvents,
  type TrackingEvent,
  whenReady,
} from '@moat/spool';
import {
  type DnsServer,
  type RedisServer,
  type SmtpSink,
  startDns,
  startRedis,
  startSmtpSink,
} from '@moat/testkit';
import pino, { type Logger } from 'pino';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { BodyCache } from './body-cache.js';
import { type DeliveryService, startDelivery } from './service.js';

export interface LogLine {
  readonly event?: string;
  readonly [key: string]: unknown;
}

export interface Harness {
  readonly redis: RedisServer;
  readonly dns: DnsServer;
  /**
   * Start delivery with this config (hostname, redis, dns filled in); stopped by `cleanup()`.
   * `deliveryRedisUrl`: the delivery service connects with it (another Redis user, say) while
   * the test's own producer keeps the server's default user.
   */
  start(
    config: MoatConfigInput | Omit<MoatConfigInput, 'hostname'>,
    options?: { deliveryRedisUrl?: string; bodies?: BodyCache },
  ): Promise<Running>;
  cleanup(): Promise<void>;
}

export interface Running {
  readonly config: Readonly<MoatConfig>;
  readonly service: DeliveryService;
  readonly spool: Spool;
  readonly logs: LogLine[];
  /** Queue a message as the edge would, from a trusted client (127.0.0.1). */
  send(sender: string, recipients: readonly string[], subject?: string): Promise<MessageMeta>;
  events(messageId: string): Promise<TrackingEvent[]>;
  /** Resolves when a tracking event matching `pred` exists (polls; bounded by `timeoutMs`). */
  waitForEvent(pred: (e: TrackingEvent) => boolean, timeoutMs?: number): Promise<TrackingEvent>;
}

let prefixes = 0;

export async function startHarness(): Promise<Harness> {
  const redis = await startRedis();
  const dns = await startDns();
  const stoppers: (() => Promise<void>)[] = [];
  return {
    redis,
    dns,
    async start(input, options = {}) {
      const r = parseConfig({
        hostname: 'relay.test',
        ...input,
        redis: {
          ...(typeof input.redis === 'object' && input.redis !== null ? input.redis : {}),
          url: redis.url,
          prefix: `d${process.pid}x${++prefixes}`,
        },
        dns: { servers: [dns.server], timeout: '300ms' },
      });
      if (!r.ok) throw new Error(`bad test config: ${JSON.stringify(r.errors)}`);
      const config = r.config;
      const logs: LogLine[] = [];
      const log = pino(
        { level: 'debug' },
        new Writable({
          write(chunk: Buffer, _enc, done) {
            for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
            done();
          },
        }),
      );
      const running = await startRunning(
        config,
        redis.url,
        options.deliveryRedisUrl ?? redis.url,
        log,
        logs,
        options.bodies,
      );
      stoppers.push(async () => {
        await running.service.stop();
        await running.spool.close();
        running.spool.redis.disconnect();
      });
      return running;
    },
    async cleanup() {
      for (const stop of stoppers.splice(0).reverse()) await stop();
      await dns.close();
      await redis.stop();
    },
  };
}

async function startRunning(
  config: Readonly<MoatConfig>,
  url: string,
  deliveryUrl: string,
  log: Logger,
  logs: LogLine[],
  bodies?: BodyCache,
): Promise<Running> {
  const producer = connect({ url }, 'producer');
  await whenReady(producer);
  const spool = new Spool({
    redis: producer,
    prefix: config.redis.prefix,
    partitions: config.redis.partitions,
    timeout: 5000,
    ack: 'local',
    replicas: 1,
  });
  const service = await startDelivery({
    config,
    redisUrl: deliveryUrl,
    log,
    nodeId: 'test-node',
    routeScanInterval: 200,
    idleTimeout: 2000,
    stopTimeout: 5000,
    bodies,
  });
  const policy = compileRelayPolicy(config);
  const events = (messageId: string) => searchMessageEvents(spool, { messageId, limit: 1000 });
  return {
    config,
    service,
    spool,
    logs,
    events,
    send(sender, recipients, subject = 'Test message') {
      const verdicts = recipients.map((rcpt) =>
        decideRecipient(policy, { clientIp: '127.0.0.1', user: null }, rcpt),
      );
      const rejected = verdicts.find((v) => v.action === 'reject');
      if (rejected)
        throw new Error(`test sends to a recipient the relay refuses: ${JSON.stringify(rejected)}`);
      const routes = [...groupByRoute(verdicts).entries()].map(([routeId, g]) => ({
        routeId,
        recipients: g.recipients,
      }));
      const body = Buffer.from(
        `From: <${sender}>\r\nTo: ${recipients.join(', ')}\r\nSubject: ${subject}\r\n` +
          `Message-ID: <${Math.random().toString(36).slice(2)}@test>\r\n\r\nHello.\r\n`,
      );
      return spool.enqueue({
        sender,
        routes,
        body,
        client: { ip: '127.0.0.1', helo: 'client.test', user: null, tls: false },
      });
    },
    async waitForEvent(pred, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const all = await searchMessageEvents(spool, { limit: 10_000 });
        const found = all.find(pred);
        if (found) return found;
        if (Date.now() > deadline) {
          throw new Error(
            `no such tracking event within ${timeoutMs} ms; have ${JSON.stringify(all.slice(0, 20))}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/** An MX-routed test config: outbound by MX on `mxPort`, trusted 127.0.0.0/8. */
export function mxConfig(
  mxPort: number,
  extra: Partial<MoatConfigInput> = {},
): Omit<MoatConfigInput, 'hostname'> {
  return {
    outbound: { clients: ['127.0.0.0/8'] },
    ...extra,
    delivery: { mxPort, retry: ['200ms', '400ms'], connectTimeout: '2s', ...(extra.delivery ?? {}) },
  };
}

export interface SuiteFixtures {
  /** The harness (valid inside tests and hooks, after beforeAll). */
  readonly h: Harness;
  /** A sink closed after the test that made it. */
  sink(opts?: Parameters<typeof startSmtpSink>[0]): Promise<SmtpSink>;
}

/** Registers a suite's hooks: one harness for the file, sinks closed after each test. */
export function useHarness(): SuiteFixtures {
  let harness: Harness | undefined;
  const sinks: SmtpSink[] = [];
  beforeAll(async () => {
    harness = await startHarness();
  });
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await harness?.cleanup();
  });
  return {
    get h() {
      if (!harness) throw new Error('the harness starts in beforeAll');
      return harness;
    },
    async sink(opts = {}) {
      const s = await startSmtpSink(opts);
      sinks.push(s);
      return s;
    },
  };
}
