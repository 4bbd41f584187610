import { compileRelayPolicy } from '@moat/policy';
import { freePort, type SinkMessage } from '@moat/testkit';
import { simpleParser } from 'mailparser';
import pino from 'pino';
import { describe, expect, test } from 'vitest';
import { operatorBounce } from './bounces.js';
import { mxConfig, useHarness } from './test-harness.js';

const fx = useHarness();
const { sink } = fx;

/** The sender's own mailbox (example.com, inbound) and an outbound MX host, both sinks. */
async function setup(remoteHost: string, delivery: Record<string, unknown> = {}) {
  const mailbox = await sink();
  const remote = await sink({ host: remoteHost });
  const run = await fx.h.start({
    ...mxConfig(remote.port, { delivery }),
    inbound: { domains: { 'example.com': `[127.0.0.1]:${mailbox.port}` } },
  });
  return { mailbox, remote, run };
}

/**
 * The DSN read back: mailparser checks the container (multipart/report; report-type=
 * delivery-status) and finds the text/rfc822-headers attachment; it folds the
 * message/delivery-status part into the text, so that part is found by its boundary.
 */
async function parseDsn(message: SinkMessage) {
  const parsed = await simpleParser(message.raw);
  const contentType = parsed.headers.get('content-type') as { value: string; params: Record<string, string> };
  expect(contentType.value).toBe('multipart/report');
  expect(contentType.params['report-type']).toBe('delivery-status');
  const boundary = contentType.params.boundary ?? '';
  const parts = message.raw.toString().split(`--${boundary}`).slice(1, -1);
  expect(parts.map((p) => /Content-Type: ([^;\r\n]+)/.exec(p)?.[1])).toEqual([
    'text/plain',
    'message/delivery-status',
    'text/rfc822-headers',
  ]);
  const headers = parsed.attachments.find((a) => a.contentType === 'text/rfc822-headers');
  expect(headers, 'a text/rfc822-headers part').toBeDefined();
  const status = parts[1] ?? '';
  return { parsed, status, headers: headers?.content.toString() ?? '' };
}

describe('bounces', () => {
  test("an operator's delete-with-DSN (the admin bounce hook) tells the sender, with the reason", async () => {
    fx.h.dns.set('slow.test', 'MX', [{ preference: 10, exchange: 'mx.slow.test' }]);
    fx.h.dns.set('mx.slow.test', 'A', ['127.0.0.9']);
    const { mailbox, remote, run } = await setup('127.0.0.9');
    remote.setBehaviour({ onRcpt: () => ({ code: 451, message: '4.3.0 Try later' }) });
    const meta = await run.send('alice@example.com', ['bob@slow.test'], 'Stuck');
    const job = await run.spool.queue(meta.routes[0]?.routeId ?? '').getJob(meta.routes[0]?.jobId ?? '');
    if (!job) throw new Error('the job is not in the queue');
    const hook = operatorBounce(
      {
        spool: run.spool,
        policy: compileRelayPolicy(run.config),
        hostname: run.config.hostname,
        enabled: true,
      },
      pino({ level: 'silent' }),
    );
    await hook(job.data, 'deleted by the operator');
    const [dsn] = await mailbox.waitForMessages(1);
    const { status } = await parseDsn(dsn as SinkMessage);
    expect(status).toContain('Final-Recipient: rfc822; bob@slow.test');
    expect(status).toContain('Status: 5.0.0');
    expect(status).toContain('Diagnostic-Code: smtp; 550 5.0.0 deleted by the operator');
  });

  test('5xx at RCPT: a DSN from <> arrives at the sender, a valid multipart/report', async () => {
    fx.h.dns.set('reject.test', 'MX', [{ preference: 10, exchange: 'mx.reject.test' }]);
    fx.h.dns.set('mx.reject.test', 'A', ['127.0.0.6']);
    const { mailbox, remote, run } = await setup('127.0.0.6');
    remote.setBehaviour({ onRcpt: () => ({ code: 550, message: '5.1.1 No such user here' }) });
    const meta = await run.send('alice@example.com', ['nobody@reject.test'], 'Doomed');
    const [dsn] = await mailbox.waitForMessages(1);
    expect(dsn?.mailFrom).toBe('');
    expect(dsn?.rcptTo).toEqual(['alice@example.com']);
    const { parsed, status, headers } = await parseDsn(dsn as SinkMessage);
    expect(parsed.subject).toBe('Undelivered Mail Returned to Sender');
    expect(status).toContain('Final-Recipient: rfc822; nobody@reject.test');
    expect(status).toContain('Action: failed');
    expect(status).toContain('Status: 5.1.1');
    expect(status).toContain('Remote-MTA: dns; mx.reject.test');
    expect(status).toContain('Diagnostic-Code: smtp; 550 5.1.1 No such user here');
    expect(headers).toContain('Subject: Doomed');
    await run.waitForEvent((e) => e.type === 'bounced' && e.messageId === meta.id);
    await run.waitForEvent((e) => e.type === 'dsn-sent' && e.messageId === meta.id);
    expect(remote.messages).toHaveLength(0);
  });

  test('null MX (RFC 7505) bounces at once with 5.1.10, NXDOMAIN with 5.1.2', async () => {
    fx.h.dns.set('nullmx.test', 'MX', [{ preference: 0, exchange: '.' }]);
    const { mailbox, run } = await setup('127.0.0.7');
    await run.send('alice@example.com', ['a@nullmx.test', 'b@nxdomain.test']);
    const dsns = await mailbox.waitForMessages(1);
    const { status } = await parseDsn(dsns[0] as SinkMessage);
    expect(status).toMatch(/Final-Recipient: rfc822; a@nullmx\.test\r?\nAction: failed\r?\nStatus: 5\.1\.10/);
    expect(status).toMatch(
      /Final-Recipient: rfc822; b@nxdomain\.test\r?\nAction: failed\r?\nStatus: 5\.1\.2/,
    );
  });

  test('a message from the null sender that fails makes no DSN', async () => {
    fx.h.dns.set('reject2.test', 'A', ['127.0.0.8']);
    const { mailbox, remote, run } = await setup('127.0.0.8');
    remote.setBehaviour({ onRcpt: () => ({ code: 550, message: '5.1.1 No such user' }) });
    const meta = await run.send('', ['x@reject2.test']);
    await run.waitForEvent((e) => e.type === 'dsn-dropped' && e.messageId === meta.id);
    await expect.poll(() => run.spool.readBody(meta.id)).toBeNull();
    expect(mailbox.messages).toHaveLength(0);
  });

  test('a DSN that cannot be delivered is dropped with a log line, never bounced', async () => {
    const down = await freePort();
    const remote = await sink({ host: '127.0.0.9' });
    remote.setBehaviour({ onRcpt: () => ({ code: 550, message: '5.1.1 No such user' }) });
    fx.h.dns.set('reject3.test', 'A', ['127.0.0.9']);
    const mailbox = await sink();
    mailbox.setBehaviour({ onRcpt: () => ({ code: 550, message: '5.1.1 Sender mailbox gone' }) });
    const run = await fx.h.start({
      ...mxConfig(remote.port),
      inbound: { domains: { 'example.com': [`[127.0.0.1]:${down}`, `[127.0.0.1]:${mailbox.port}`] } },
    });
    await run.send('alice@example.com', ['x@reject3.test']);
    await expect
      .poll(() => run.logs.filter((l) => l.event === 'delivery.dsn_dropped').length, { timeout: 10_000 })
      .toBe(1);
    expect(run.logs.filter((l) => l.event === 'delivery.dsn_queued')).toHaveLength(1);
    expect(mailbox.messages).toHaveLength(0);
  });

  test('one message to 3 domains: the 2 that work get it, the third is retried, then bounced', async () => {
    const a = await sink({ host: '127.0.0.10' });
    const b = await sink({ host: '127.0.0.11', port: a.port });
    fx.h.dns.set('one.test', 'A', ['127.0.0.10']);
    fx.h.dns.set('two.test', 'A', ['127.0.0.11']);
    fx.h.dns.set('three.test', 'A', ['127.0.0.12']); // nothing listens there
    const mailbox = await sink();
    const run = await fx.h.start({
      ...mxConfig(a.port, { delivery: { lifetime: '1500ms', delayWarning: null } }),
      inbound: { domains: { 'example.com': `[127.0.0.1]:${mailbox.port}` } },
    });
    const meta = await run.send('alice@example.com', ['x@one.test', 'y@two.test', 'z@three.test']);
    await a.waitForMessages(1);
    await b.waitForMessages(1);
    const deferred = await run.waitForEvent((e) => e.type === 'deferred' && e.messageId === meta.id);
    expect(deferred.recipients).toEqual(['z@three.test']);
    const [dsn] = await mailbox.waitForMessages(1);
    const { status } = await parseDsn(dsn as SinkMessage);
    expect(status.match(/Final-Recipient/g)).toHaveLength(1);
    expect(status).toContain('Final-Recipient: rfc822; z@three.test');
    expect(status).toMatch(/Status: 4\.4\.1/);
    // delivered once each, not again on the retries of z@three.test
    expect([a.messages.length, b.messages.length]).toEqual([1, 1]);
    await run.waitForEvent((e) => e.type === 'expired' && e.messageId === meta.id);
  });
});
