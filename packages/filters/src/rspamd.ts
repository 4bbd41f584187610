/**
 * Rspamd's normal worker over HTTP: POST /checkv2 with the message as the body and the
 * envelope in headers (IP, Helo, From, one Rcpt per recipient, User, Queue-Id, MTA-Name),
 * answered with JSON: { action, score, required_score, symbols, subject? }. node:http (not
 * fetch) so that each recipient gets a Rcpt header line of its own, as Rspamd reads them.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RspamdAction, RspamdResult } from '@moat/policy';
import { DaemonError } from './daemon-socket.js';

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

export function checkWithRspamd(
  url: string,
  body: Buffer,
  envelope: RspamdEnvelope,
  options: { password?: string | undefined; signal: AbortSignal },
): Promise<RspamdResult> {
  const target = new URL('/checkv2', url);
  const headers: Record<string, string | string[]> = {
    'content-length': String(body.length),
    IP: envelope.clientIp,
    From: envelope.sender === '' ? '<>' : envelope.sender,
    'Queue-Id': envelope.queueId,
    'MTA-Name': envelope.mta,
  };
  if (envelope.helo) headers.Helo = envelope.helo;
  if (envelope.recipients.length > 0) headers.Rcpt = [...envelope.recipients];
  if (envelope.user) headers.User = envelope.user;
  if (options.password) headers.Password = options.password;
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<RspamdResult>((resolve, reject) => {
    const req = request(
      target,
      { method: 'POST', headers, signal: options.signal },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(new DaemonError(`rspamd at ${target.host}: ${err.message}`)));
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
