/**
 * The one figure smtp-source does not give: the time from the end of DATA (".\r\n" written) to
 * the 250 reply, per message, measured with @moat/testkit's RawSmtp.
 */
import { expectCode, RawSmtp } from '@moat/testkit';

async function oneMessage(port: number, body: string, to: string): Promise<number> {
  // Nagle off, so ".\r\n" leaves at once; a generous bound, as a loaded server may be slow.
  const c = await RawSmtp.connect({ port, noDelay: true, timeoutMs: 60_000 });
  try {
    expectCode(await c.cmd('EHLO latency.example.net'), '250', 'EHLO');
    expectCode(await c.send('bench@example.net', [to], body), '250', 'end of DATA');
    return c.endOfDataMs;
  } finally {
    await c.quit({ wait: false });
  }
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
