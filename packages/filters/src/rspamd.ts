/**
 * Rspamd's normal worker over HTTP: POST /checkv2 with the message as the body and the
 * envelope in headers (IP, Helo, From, one Rcpt per recipient, User, Queue-Id, MTA-Name),
 * answered with JSON: { action, score, required_score, symbols, subject? }. Each recipient gets a
 * Rcpt header line of its own, as Rspamd reads them.
 */
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RspamdAction, RspamdResult } from '@moat/policy';
import { DaemonError, exchange, writeAll } from './daemon-socket.js';

export interface RspamdEnvelope {
  readonly clientIp: string;
  readonly helo: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly user: string | null;
  readonly queueId: string;
  /** Moat's own hostname (MTA-Name), so Rspamd's own Authentication-Results use it. */
  readonly mta: string;
}

const ACTIONS = new Set<RspamdAction>([
  'no action',
  'greylist',
  'add header',
  'rewrite subject',
  'soft reject',
  'reject',
]);

export function parseRspamdReply(status: number, text: string): RspamdResult {
  if (status !== 200) throw new DaemonError(`rspamd answered HTTP ${status}: ${text.slice(0, 200)}`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DaemonError(
      `rspamd answered something that is not JSON: ${JSON.stringify(text.slice(0, 200))}`,
    );
  }
  const r = json as {
    action?: unknown;
    score?: unknown;
    required_score?: unknown;
    symbols?: unknown;
    subject?: unknown;
  };
  if (typeof r.action !== 'string' || !ACTIONS.has(r.action as RspamdAction) || typeof r.score !== 'number')
    throw new DaemonError(`rspamd answered without a known action and score: ${text.slice(0, 200)}`);
  return {
    action: r.action as RspamdAction,
    score: r.score,
    required: typeof r.required_score === 'number' ? r.required_score : 0,
    symbols: r.symbols && typeof r.symbols === 'object' ? Object.keys(r.symbols).sort() : [],
    ...(typeof r.subject === 'string' ? { subject: r.subject } : {}),
  };
}

export async function checkWithRspamd(
  url: string,
  body: Buffer,
  envelope: RspamdEnvelope,
  options: { password?: string | undefined; signal: AbortSignal },
): Promise<RspamdResult> {
  const target = new URL('/checkv2', url);
  if (target.protocol === 'https:') return checkOverHttps(target, body, envelope, options);
  // Rspamd answers every request with "Connection: close": one request per connection, read
  // to the end. Over a plain socket that costs Moat 0.75 ms of CPU per message where node:http
  // cost 1.1-1.2 (docs/benchmarks.md, scripts/bench.sh filters); HTTPS keeps node:https.
  const head = requestHead(target, body.length, envelope, options.password);
  const address = { host: target.hostname.replace(/^\[|\]$/g, ''), port: Number(target.port || 80) };
  const reply = await exchange('rspamd', address, options.signal, (socket) =>
    writeAll(socket, [[Buffer.from(head, 'latin1'), body]]),
  );
  return parseHttpReply(reply);
}

/** The request line and header fields (CR and LF cannot get into a value). */
function requestHead(
  target: URL,
  length: number,
  envelope: RspamdEnvelope,
  password: string | undefined,
): string {
  const lines = [
    `POST ${target.pathname} HTTP/1.1`,
    `Host: ${target.host}`,
    'Connection: close',
    `Content-Length: ${length}`,
  ];
  for (const [name, value] of envelopeHeaders(envelope, password))
    lines.push(`${name}: ${value.replace(/[\r\n]/g, ' ')}`);
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function envelopeHeaders(envelope: RspamdEnvelope, password: string | undefined): [string, string][] {
  const out: [string, string][] = [
    ['IP', envelope.clientIp],
    ['From', envelope.sender === '' ? '<>' : envelope.sender],
    ['Queue-Id', envelope.queueId],
    ['MTA-Name', envelope.mta],
  ];
  if (envelope.helo) out.push(['Helo', envelope.helo]);
  for (const rcpt of envelope.recipients) out.push(['Rcpt', rcpt]);
  if (envelope.user) out.push(['User', envelope.user]);
  if (password) out.push(['Password', password]);
  return out;
}

/** An HTTP/1.x answer read to the close: status, then the body after the blank line. */
export function parseHttpReply(reply: Buffer): RspamdResult {
  const end = reply.indexOf('\r\n\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(
    reply.subarray(0, Math.min(reply.length, 64)).toString('latin1'),
  );
  if (end < 0 || !status?.[1])
    throw new DaemonError(`rspamd answered ${JSON.stringify(reply.subarray(0, 100).toString('latin1'))}`);
  const head = reply.subarray(0, end).toString('latin1');
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  const content = reply.subarray(end + 4);
  if (length !== undefined && content.length < Number(length))
    throw new DaemonError(`rspamd's answer was cut off (${content.length} of ${length} bytes)`);
  return parseRspamdReply(Number(status[1]), content.toString('utf8'));
}

function checkOverHttps(
  target: URL,
  body: Buffer,
  envelope: RspamdEnvelope,
  options: { password?: string | undefined; signal: AbortSignal },
): Promise<RspamdResult> {
  const headers: Record<string, string | string[]> = { 'content-length': String(body.length) };
  for (const [name, value] of envelopeHeaders(envelope, options.password)) {
    const had = headers[name];
    headers[name] = had === undefined ? value : [...(Array.isArray(had) ? had : [had]), value];
  }
  return new Promise<RspamdResult>((resolve, reject) => {
    const req = httpsRequest(
      target,
      { method: 'POST', headers, signal: options.signal },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(parseRspamdReply(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
        res.on('aborted', () => reject(new DaemonError(`rspamd at ${target.host}: the answer was cut off`)));
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      reject(
        new DaemonError(
          `rspamd at ${target.host}: ${err.name === 'AbortError' ? 'no answer in time' : (err.code ?? err.message)}`,
        ),
      ),
    );
    req.end(body);
  });
}

export async function pingRspamd(url: string, signal: AbortSignal): Promise<void> {
  const res = await fetch(new URL('/ping', url), { signal }).catch((err: Error) => {
    throw new DaemonError(
      `rspamd at ${new URL(url).host}: ${(err.cause as Error | undefined)?.message ?? err.message}`,
    );
  });
  const text = await res.text();
  if (res.status !== 200 || !text.startsWith('pong'))
    throw new DaemonError(
      `rspamd answered /ping with HTTP ${res.status} ${JSON.stringify(text.slice(0, 100))}`,
    );
}
