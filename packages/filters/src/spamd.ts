/**
 * SpamAssassin's spamd over the SPAMC protocol: "SYMBOLS SPAMC/1.5" with Content-length (and
 * User) headers, a blank line, the message; spamd answers "SPAMD/1.x 0 EX_OK", a
 * "Spam: True ; 1000.0 / 5.0" header, a blank line and the symbols that hit, then closes.
 */
import type { DaemonAddress, SpamassassinResult } from '@moat/policy';
import { DaemonError, exchange, writeAll } from './daemon-socket.js';

export function parseSpamdReply(reply: string): SpamassassinResult {
  const end = reply.indexOf('\r\n\r\n');
  const head = end < 0 ? reply : reply.slice(0, end);
  const [status, ...lines] = head.split('\r\n');
  const ok = /^SPAMD\/\d+\.\d+ (\d+) (\S+)/.exec(status ?? '');
  if (!ok) throw new DaemonError(`spamd answered ${JSON.stringify((status ?? '').slice(0, 200))}`);
  if (ok[1] !== '0') throw new DaemonError(`spamd refused the message: ${status}`);
  const spamLine = lines.find((l) => /^spam:/i.test(l));
  const spam = /^spam:\s*(true|false|yes|no)\s*;\s*(-?[\d.]+)\s*\/\s*(-?[\d.]+)\s*$/i.exec(spamLine ?? '');
  if (!spam?.[1] || !spam[2] || !spam[3])
    throw new DaemonError(`spamd sent no Spam header: ${JSON.stringify(head.slice(0, 200))}`);
  const symbols = end < 0 ? '' : reply.slice(end + 4).trim();
  return {
    spam: /^(true|yes)$/i.test(spam[1]),
    score: Number(spam[2]),
    threshold: Number(spam[3]),
    symbols: symbols === '' ? [] : symbols.split(',').map((s) => s.trim()),
  };
}

export async function checkWithSpamd(
  address: DaemonAddress,
  body: Buffer,
  user: string | undefined,
  signal: AbortSignal,
): Promise<SpamassassinResult> {
  const head = `SYMBOLS SPAMC/1.5\r\nContent-length: ${body.length}\r\n${user ? `User: ${user}\r\n` : ''}\r\n`;
  // spamd reads Content-length bytes, answers and closes: no half-close needed (some
  // proxies would take one for the end of the whole exchange).
  const reply = await exchange('spamd', address, signal, (socket) =>
    writeAll(socket, [[Buffer.from(head, 'latin1'), body]]),
  );
  return parseSpamdReply(reply.toString('latin1'));
}

export async function pingSpamd(address: DaemonAddress, signal: AbortSignal): Promise<void> {
  const reply = await exchange('spamd', address, signal, (socket) =>
    writeAll(socket, [[Buffer.from('PING SPAMC/1.5\r\n\r\n')]]),
  );
  if (!/^SPAMD\/\d+\.\d+ 0 PONG/.test(reply.toString('latin1')))
    throw new DaemonError(
      `spamd answered PING with ${JSON.stringify(reply.toString('latin1').slice(0, 100))}`,
    );
}
