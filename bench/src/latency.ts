/**
 * A small SMTP client of our own for the one figure smtp-source does not give: the time from
 * the end of DATA (".\r\n" written) to the 250 reply, per message.
 */
import { connect, type Socket } from 'node:net';

class Lines {
  #buffer = '';
  #waiters: ((line: string) => void)[] = [];
  #ready: string[] = [];

  constructor(socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.#buffer += d;
      for (let i = this.#buffer.indexOf('\r\n'); i >= 0; i = this.#buffer.indexOf('\r\n')) {
        const line = this.#buffer.slice(0, i);
        this.#buffer = this.#buffer.slice(i + 2);
        const w = this.#waiters.shift();
        if (w) w(line);
        else this.#ready.push(line);
      }
    });
    socket.on('close', () => {
      for (const w of this.#waiters.splice(0)) w('(closed)');
    });
  }

  async reply(): Promise<string> {
    for (;;) {
      const line = this.#ready.shift() ?? (await new Promise<string>((r) => this.#waiters.push(r)));
      if (line === '(closed)' || line[3] !== '-') return line;
    }
  }
}

async function oneMessage(port: number, body: string, to: string): Promise<number> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => {});
  const lines = new Lines(socket);
  const expect = async (prefix: string) => {
    const r = await lines.reply();
    if (!r.startsWith(prefix)) throw new Error(`expected ${prefix}, got: ${r}`);
  };
  await expect('220');
  socket.write('EHLO latency.example.net\r\n');
  await expect('250');
  socket.write('MAIL FROM:<bench@example.net>\r\n');
  await expect('250');
  socket.write(`RCPT TO:<${to}>\r\n`);
  await expect('250');
  socket.write('DATA\r\n');
  await expect('354');
  socket.write(body);
  const started = performance.now();
  socket.write('.\r\n');
  await expect('250');
  const ms = performance.now() - started;
  socket.end('QUIT\r\n');
  return ms;
}

export interface LatencyResult {
  readonly p50: number;
  readonly p99: number;
  readonly samples: number;
}

/** `messages` messages, `sessions` at a time, one per connection; returns p50/p99 in ms. */
export async function measureLatency(
  port: number,
  opts: { messages: number; sessions: number; size: number; to: string },
): Promise<LatencyResult> {
  const line = `${'x'.repeat(76)}\r\n`;
  const body = `From: bench@example.net\r\nTo: ${opts.to}\r\nSubject: latency\r\n\r\n${line.repeat(Math.max(1, Math.round(opts.size / line.length)))}`;
  const samples: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < opts.messages) {
      next++;
      samples.push(await oneMessage(port, body, opts.to));
    }
  };
  await Promise.all(Array.from({ length: opts.sessions }, worker));
  samples.sort((a, b) => a - b);
  const at = (q: number) =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), samples: samples.length };
}
