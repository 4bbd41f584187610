/** RawSmtp against a real smtp-server sink on loopback: replies, transactions, bounds. */
import { afterEach, expect, test } from 'vitest';
import { RawSmtp } from './raw-smtp.js';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from './smtp-sink.js';

const sinks: SmtpSink[] = [];
const clients: RawSmtp[] = [];

async function open(opts: SmtpSinkOptions = {}, timeoutMs?: number): Promise<[SmtpSink, RawSmtp]> {
  const sink = await startSmtpSink(opts);
  sinks.push(sink);
  const client = await RawSmtp.connect({ port: sink.port, ...(timeoutMs ? { timeoutMs } : {}) });
  clients.push(client);
  return [sink, client];
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(sinks.splice(0).map((s) => s.close()));
});

test('reads a multi-line reply whole, sends a transaction as it is and times the end of DATA', async () => {
  const [sink, c] = await open();
  const ehlo = await c.cmd('EHLO client.test');
  expect(ehlo.split('\n')[0]).toMatch(/^250-sink\.test/);
  expect(ehlo).toMatch(/\n250[- ]STARTTLS(\n|$)/);
  expect(ehlo.split('\n').at(-1)).toMatch(/^250 /);

  const reply = await c.send(
    'a@example.org',
    ['b@example.com', 'c@example.com'],
    'Subject: x\r\n\r\n..dot\r\n',
  );
  expect(reply).toBe('250 OK: message 1 queued');
  expect(c.endOfDataMs).toBeGreaterThanOrEqual(0);
  expect(sink.messages[0]?.rcptTo).toEqual(['b@example.com', 'c@example.com']);
  expect(sink.messages[0]?.raw.toString('latin1')).toBe('Subject: x\r\n\r\n.dot\r\n');
  await c.quit();
});

test('data() dot-stuffs and ends the body; a refused DATA is returned, not thrown', async () => {
  const [sink, c] = await open();
  await c.cmd('EHLO client.test');
  expect(await c.data('x')).toMatch(/^503 /);
  await c.cmd('MAIL FROM:<a@example.org>');
  await c.cmd('RCPT TO:<b@example.com>');
  expect(await c.data('Subject: x\r\n\r\n.dot\r\nend')).toMatch(/^250 /);
  expect(sink.messages[0]?.raw.toString('latin1')).toBe('Subject: x\r\n\r\n.dot\r\nend\r\n');
});

test('send() throws naming the refused step, so a test fails there', async () => {
  const [, c] = await open({ onRcpt: () => ({ code: 550, message: '5.1.1 No such user' }) });
  await c.cmd('EHLO client.test');
  await expect(c.send('a@example.org', ['b@example.com'], 'x\r\n')).rejects.toThrow(
    'RCPT b@example.com: expected 250, got "550 5.1.1 No such user"',
  );
});

test('greeting: false leaves the greeting to reply(); a raw write streams with drain()', async () => {
  const sink = await startSmtpSink();
  sinks.push(sink);
  const c = await RawSmtp.connect({ port: sink.port, greeting: false, noDelay: true });
  clients.push(c);
  expect(await c.reply()).toMatch(/^220 sink\.test/);
  await c.cmd('EHLO client.test');
  await c.cmd('MAIL FROM:<a@example.org>');
  await c.cmd('RCPT TO:<b@example.com>');
  expect(await c.cmd('DATA')).toMatch(/^354 /);
  const chunk = Buffer.from(`${'x'.repeat(1022)}\r\n`.repeat(1024));
  for (let i = 0; i < 8; i++) if (!c.write(chunk)) await c.drain();
  c.write('.\r\n');
  expect(await c.reply()).toMatch(/^250 /);
  expect(sink.messages[0]?.raw.length).toBe(8 * chunk.length);
});

test('every wait is bounded, and a hang-up fails reply()', async () => {
  const [, c] = await open({}, 300);
  await expect(c.reply()).rejects.toThrow('no reply within 300 ms');
  c.write('QUIT\r\n');
  expect(await c.reply()).toMatch(/^221 /);
  await expect(c.reply()).rejects.toThrow(/^connection closed while waiting for a reply/);
});
