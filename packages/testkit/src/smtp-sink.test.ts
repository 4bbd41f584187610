import net from 'node:net';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, it } from 'vitest';
import { type SmtpSink, type SmtpSinkOptions, startSmtpSink } from './smtp-sink.js';

/** What a delivery attempt ended with: the reply code the client saw, or 250. */
async function send(
  sink: SmtpSink,
  to: string | string[],
  tls: 'ignore' | 'require' = 'ignore',
): Promise<number> {
  const transport = nodemailer.createTransport({
    host: sink.host,
    port: sink.port,
    secure: false,
    ...(tls === 'ignore' ? { ignoreTLS: true } : { requireTLS: true, tls: { rejectUnauthorized: false } }),
  });
  try {
    await transport.sendMail({
      from: 'sender@example.org',
      to,
      subject: 'test',
      text: 'Hello from the test kit',
    });
    return 250;
  } catch (err) {
    const code = (err as { responseCode?: number }).responseCode;
    if (code === undefined) throw err;
    return code;
  } finally {
    transport.close();
  }
}

/** The EHLO reply lines, read over a raw socket (what the server advertises). */
function ehlo(sink: SmtpSink): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(sink.port, sink.host);
    let buffered = '';
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered += chunk.toString();
      if (buffered.startsWith('220 ') && buffered.endsWith('\r\n') && !buffered.includes('\r\n250')) {
        socket.write('EHLO client.test\r\n');
      } else if (/\r\n250 [^\r]*\r\n$/.test(buffered)) {
        socket.end('QUIT\r\n');
        resolve(buffered.split('\r\n').filter((line) => line.startsWith('250')));
      }
    });
  });
}

describe('startSmtpSink', () => {
  const sinks: SmtpSink[] = [];
  const start = async (opts?: SmtpSinkOptions) => {
    const sink = await startSmtpSink(opts);
    sinks.push(sink);
    return sink;
  };
  afterEach(async () => {
    await Promise.all(sinks.splice(0).map((sink) => sink.close()));
  });

  it('records a message sent with nodemailer', async () => {
    const sink = await start();
    expect(sink.host).toBe('127.0.0.1');
    expect(await send(sink, ['a@example.com', 'b@example.com'])).toBe(250);

    const [message] = await sink.waitForMessages(1);
    expect(message?.mailFrom).toBe('sender@example.org');
    expect(message?.rcptTo).toEqual(['a@example.com', 'b@example.com']);
    expect(message?.raw.toString()).toContain('Hello from the test kit');
    expect(message?.remoteAddress).toBe('127.0.0.1');
    expect(message?.secure).toBe(false);
    expect(sink.connections).toBe(1);
  });

  it('offers STARTTLS by default and hides it with tls: false', async () => {
    const withTls = await start();
    expect(await send(withTls, 'a@example.com', 'require')).toBe(250);
    expect(withTls.messages[0]?.secure).toBe(true);

    expect((await ehlo(withTls)).join('\n')).toMatch(/^250[- ]STARTTLS$/m);

    const plain = await start({ tls: false });
    expect((await ehlo(plain)).join('\n')).not.toContain('STARTTLS');
    // a client that insists on STARTTLS is refused, not upgraded
    expect(await send(plain, 'a@example.com', 'require')).toBeGreaterThanOrEqual(500);
    expect(plain.messages).toHaveLength(0);
  });

  it('refuses a recipient with the code onRcpt returns', async () => {
    const sink = await start({
      onRcpt: (address) =>
        address.startsWith('nobody@') ? { code: 550, message: '5.1.1 No such user' } : undefined,
    });
    expect(await send(sink, 'nobody@example.com')).toBe(550);
    expect(await send(sink, ['nobody@example.com', 'someone@example.com'])).toBe(250);
    const [message] = await sink.waitForMessages(1);
    expect(message?.rcptTo).toEqual(['someone@example.com']);
  });

  it('switches from 451 to 250 with setBehaviour', async () => {
    const sink = await start({ onRcpt: () => ({ code: 451, message: '4.3.0 Try again later' }) });
    expect(await send(sink, 'a@example.com')).toBe(451);
    expect(sink.messages).toHaveLength(0);

    sink.setBehaviour({ onRcpt: undefined });
    expect(await send(sink, 'a@example.com')).toBe(250);
    expect(sink.messages).toHaveLength(1);
    expect(sink.connections).toBe(2);
  });

  it('refuses at MAIL FROM and after DATA, and a throwing hook gives 451, not 550', async () => {
    const sink = await start({ onMailFrom: () => ({ code: 421, message: '4.7.0 Go away' }) });
    expect(await send(sink, 'a@example.com')).toBe(421);

    sink.setBehaviour({
      onMailFrom: undefined,
      onData: (msg) => ({ code: 554, message: `5.7.1 ${msg.raw.length}` }),
    });
    expect(await send(sink, 'a@example.com')).toBe(554);

    sink.setBehaviour({
      onData: () => {
        throw new Error('bug in a test');
      },
    });
    expect(await send(sink, 'a@example.com')).toBe(451);
    expect(sink.messages).toHaveLength(0);
  });

  it('enforces the SIZE limit with 552', async () => {
    const sink = await start({ size: 100 });
    const transport = nodemailer.createTransport({ host: sink.host, port: sink.port, ignoreTLS: true });
    await expect(
      transport.sendMail({ from: 'a@example.org', to: 'b@example.com', text: 'x'.repeat(500) }),
    ).rejects.toMatchObject({ responseCode: 552 });
    transport.close();
  });

  it('listens on another loopback address and a given port, so sinks can share a port', async () => {
    const first = await start({ host: '127.0.0.2' });
    const second = await start({ host: '127.0.0.3', port: first.port });
    expect([first.host, second.host, second.port]).toEqual(['127.0.0.2', '127.0.0.3', first.port]);
    const transport = nodemailer.createTransport({ host: '127.0.0.3', port: first.port, ignoreTLS: true });
    await transport.sendMail({ from: 'a@example.org', to: 'b@example.com', text: 'x' });
    transport.close();
    expect([first.messages.length, second.messages.length]).toEqual([0, 1]);
  });

  it('an async onData delays the answer to DATA', async () => {
    const sink = await start({
      onData: () => new Promise((resolve) => setTimeout(() => resolve(undefined), 300)),
    });
    const started = Date.now();
    expect(await send(sink, 'a@example.com')).toBe(250);
    expect(Date.now() - started).toBeGreaterThanOrEqual(280);
  });

  it('accepts AUTH only with the configured credentials', async () => {
    const sink = await start({ users: { relay: 'secret' } });
    const login = async (pass: string) => {
      const transport = nodemailer.createTransport({
        host: sink.host,
        port: sink.port,
        ignoreTLS: true,
        auth: { user: 'relay', pass },
      });
      try {
        await transport.sendMail({ from: 'a@example.org', to: 'b@example.com', text: 'x' });
        return 250;
      } catch (err) {
        return (err as { responseCode?: number }).responseCode;
      } finally {
        transport.close();
      }
    };
    expect(await login('wrong')).toBe(535);
    expect(await login('secret')).toBe(250);
    expect(sink.logins).toEqual(['relay']);
  });

  it('waitForMessages rejects with how many arrived', async () => {
    const sink = await start();
    await send(sink, 'a@example.com');
    await expect(sink.waitForMessages(2, 200)).rejects.toThrow(
      'expected 2 message(s) within 200 ms, 1 arrived',
    );
  });
});
