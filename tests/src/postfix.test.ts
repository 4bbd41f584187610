/**
 * Interop with a real MTA: Postfix (Debian's package, a private instance) is the smart host
 * Moat delivers to; it relays what it accepts to an SMTP sink.
 */
import { Writable } from 'node:stream';
import { type DeliveryService, startDelivery } from '@moat/delivery';
import { compileRelayPolicy, decideRecipient, groupByRoute, parseConfig } from '@moat/policy';
import { connect, Spool, whenReady } from '@moat/spool';
import {
  type DnsServer,
  type Postfix,
  type RedisServer,
  type SmtpSink,
  startDns,
  startPostfix,
  startRedis,
  startSmtpSink,
} from '@moat/testkit';
import pino from 'pino';
import { afterAll, beforeAll, expect, test } from 'vitest';

let redis: RedisServer;
let dns: DnsServer;
let sink: SmtpSink;
let postfix: Postfix;
let delivery: DeliveryService;
let spool: Spool;
let producer: ReturnType<typeof connect>;
const logs: Record<string, unknown>[] = [];

let policy: ReturnType<typeof compileRelayPolicy>;

beforeAll(async () => {
  redis = await startRedis();
  dns = await startDns();
  sink = await startSmtpSink({ tls: false });
  postfix = await startPostfix({ relayhost: `[127.0.0.1]:${sink.port}`, relayDomains: ['example.com'] });
  const r = parseConfig({
    hostname: 'relay.test',
    redis: { url: redis.url, prefix: 'interop' },
    // example.com is relayed by Postfix; other.test is not (Postfix answers 554 5.7.1).
    inbound: {
      domains: {
        'example.com': `[127.0.0.1]:${postfix.port}`,
        'other.test': `[127.0.0.1]:${postfix.port}`,
      },
    },
    delivery: { retry: ['500ms'] },
    dns: { servers: [dns.server] },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
        done();
      },
    }),
  );
  delivery = await startDelivery({ config: r.config, redisUrl: redis.url, log, nodeId: 'interop' });
  producer = connect({ url: redis.url }, 'producer');
  await whenReady(producer);
  spool = new Spool({ redis: producer, prefix: 'interop', timeout: 5000, ack: 'local', replicas: 1 });
  policy = compileRelayPolicy(r.config);
}, 60_000);

afterAll(async () => {
  await delivery?.stop();
  await spool?.close();
  producer?.disconnect();
  if (postfix) {
    const log = await postfix.maillog();
    if (process.env.MOAT_SHOW_POSTFIX_LOG) console.log(log);
    await postfix.stop();
  }
  await sink?.close();
  await dns?.close();
  await redis?.stop();
});

async function send(sender: string, recipients: string[], subject: string) {
  const verdicts = recipients.map((rcpt) =>
    decideRecipient(policy, { clientIp: '127.0.0.1', user: null }, rcpt),
  );
  const routes = [...groupByRoute(verdicts)].map(([routeId, g]) => ({ routeId, recipients: g.recipients }));
  return spool.enqueue({
    sender,
    routes,
    body: Buffer.from(
      `From: <${sender}>\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\n\r\nHello Postfix.\r\n`,
    ),
    client: { ip: '127.0.0.1', helo: 'client.test', user: null, tls: false },
  });
}

test('Moat delivers to Postfix over STARTTLS, and Postfix relays the message on', async () => {
  await send('alice@elsewhere.test', ['bob@example.com'], 'Interop one');
  const [message] = await sink.waitForMessages(1, 30_000);
  expect(message?.rcptTo).toEqual(['bob@example.com']);
  expect(message?.mailFrom).toBe('alice@elsewhere.test');
  const raw = message?.raw.toString() ?? '';
  expect(raw).toContain('Subject: Interop one');
  expect(raw).toMatch(/Received: from relay\.test \(.*\[127\.0\.0\.1\]\)\r\n\t\(using TLSv1\.[23]/);
  expect(raw).toMatch(/by postfix\.test \(Postfix\) with ESMTPS id/);
  expect(logs.find((l) => l.event === 'delivery.tls')).toMatchObject({ result: 'tls' });
}, 60_000);

test('Postfix refuses a recipient (554 5.7.1): Moat bounces, and the DSN travels through Postfix too', async () => {
  const before = sink.messages.length;
  await send('alice@example.com', ['carol@other.test'], 'Interop two');
  const [dsn] = (await sink.waitForMessages(before + 1, 30_000)).slice(before);
  expect(dsn?.mailFrom).toBe('');
  expect(dsn?.rcptTo).toEqual(['alice@example.com']);
  const raw = dsn?.raw.toString() ?? '';
  expect(raw).toContain('Content-Type: multipart/report; report-type=delivery-status;');
  expect(raw).toContain('Final-Recipient: rfc822; carol@other.test');
  expect(raw).toContain('Status: 5.7.1');
  expect(raw).toMatch(/Diagnostic-Code: smtp; 554 5\.7\.1 <carol@other\.test>: Relay access\s+denied/);
}, 60_000);
