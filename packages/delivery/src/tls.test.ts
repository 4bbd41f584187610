import { describe, expect, test } from 'vitest';
import { useHarness } from './test-harness.js';

const fx = useHarness();
const { sink } = fx;

type Tls = 'opportunistic' | 'required' | 'none';

async function deliverWith(tls: Tls, sinkTls: boolean, verifyCertificates = false) {
  let mailFroms = 0;
  const exchange = await sink({ tls: sinkTls, onMailFrom: () => void mailFroms++ });
  const run = await fx.h.start({
    inbound: { domains: { 'example.com': { hosts: `[127.0.0.1]:${exchange.port}`, tls } } },
    delivery: { retry: ['200ms'], verifyCertificates },
  });
  const meta = await run.send('a@elsewhere.test', ['bob@example.com']);
  return { exchange, run, meta, mailFroms: () => mailFroms };
}

describe('TLS to the next hop', () => {
  test('opportunistic: STARTTLS when offered, and the outcome is logged', async () => {
    const { exchange, run } = await deliverWith('opportunistic', true);
    const [message] = await exchange.waitForMessages(1);
    expect(message?.secure).toBe(true);
    const line = run.logs.find((l) => l.event === 'delivery.tls');
    expect(line).toMatchObject({ mode: 'opportunistic', result: 'tls', verified: false });
    expect(line?.protocol).toMatch(/^TLSv1\.[23]$/);
  });

  test('opportunistic: plaintext when the peer offers no STARTTLS', async () => {
    const { exchange, run } = await deliverWith('opportunistic', false);
    const [message] = await exchange.waitForMessages(1);
    expect(message?.secure).toBe(false);
    expect(run.logs.find((l) => l.event === 'delivery.tls')).toMatchObject({ result: 'none' });
  });

  test('opportunistic with verification on: a certificate that does not verify falls back to plaintext', async () => {
    const { exchange, run } = await deliverWith('opportunistic', true, true);
    const [message] = await exchange.waitForMessages(1);
    expect(message?.secure).toBe(false);
    expect(run.logs.find((l) => l.event === 'delivery.tls')).toMatchObject({ result: 'fallback' });
  });

  test('none: plaintext even when STARTTLS is offered', async () => {
    const { exchange } = await deliverWith('none', true);
    const [message] = await exchange.waitForMessages(1);
    expect(message?.secure).toBe(false);
  });

  test('required: a peer without STARTTLS gets nothing, the mail is deferred, never sent in plaintext', async () => {
    const { exchange, run, meta, mailFroms } = await deliverWith('required', false);
    await expect
      .poll(async () => (await run.events(meta.id)).filter((e) => e.type === 'deferred').length, {
        timeout: 5000,
      })
      .toBeGreaterThanOrEqual(2);
    const deferred = (await run.events(meta.id)).find((e) => e.type === 'deferred');
    expect(deferred?.reply).toMatch(/TLS with \[127\.0\.0\.1\]:\d+ failed \(required\)/);
    expect(mailFroms()).toBe(0);
    expect(exchange.messages).toHaveLength(0);
  });

  test('required with verification on: an unverifiable certificate fails the attempt', async () => {
    const { exchange, run, meta, mailFroms } = await deliverWith('required', true, true);
    const deferred = await run.waitForEvent((e) => e.type === 'deferred' && e.messageId === meta.id);
    expect(deferred.reply).toMatch(/certificate/i);
    expect(mailFroms()).toBe(0);
    expect(exchange.messages).toHaveLength(0);
  });

  test('required with a peer that has TLS: delivered encrypted', async () => {
    const { exchange } = await deliverWith('required', true);
    const [message] = await exchange.waitForMessages(1);
    expect(message?.secure).toBe(true);
  });
});
