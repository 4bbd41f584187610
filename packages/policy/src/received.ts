/**
 * The trace header Moat prepends (RFC 5321 §4.4), in the shape Postfix writes it so that
 * existing log parsers and Exchange's header analyser read it; protocol keywords per RFC 3848.
 */

export interface ReceivedInput {
  /** What the client said in HELO/EHLO. */
  readonly helo: string;
  /** Reverse DNS name of the client, when looked up. */
  readonly clientHostname: string | null;
  readonly clientIp: string;
  readonly esmtp: boolean;
  readonly tls: {
    readonly protocol: string;
    readonly cipher: string;
    readonly bits?: number | undefined;
  } | null;
  readonly user: string | null;
  readonly by: string;
  readonly queueId: string;
  /** Written as "for <…>" only when the message has exactly one recipient (privacy, as Postfix). */
  readonly recipients: readonly string[];
  readonly date: Date;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number): string => String(n).padStart(2, '0');

/** RFC 5322 date-time in UTC: "Sat, 28 Nov 2026 15:14:50 +0000". */
export function rfc5322Date(date: Date): string {
  return `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(
    date.getUTCHours(),
  )}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

/** Keep header text to printable ASCII without parentheses games: a HELO is client-controlled. */
function clean(text: string): string {
  return text
    .replace(/[^\x21-\x7e]/g, '?')
    .replace(/[()\\]/g, '?')
    .slice(0, 255);
}

/** The protocol keyword: SMTP, ESMTP, ESMTPS, ESMTPA, ESMTPSA. */
export function withProtocol(esmtp: boolean, tls: boolean, authenticated: boolean): string {
  if (!esmtp) return 'SMTP';
  return `ESMTP${tls ? 'S' : ''}${authenticated ? 'A' : ''}`;
}

/** The whole header line(s), folded, ending in CRLF. */
export function composeReceived(input: ReceivedInput): string {
  const ip = input.clientIp.replace(/^::ffff:(?=\d+\.)/, '');
  const literal = ip.includes(':') ? `IPv6:${ip}` : ip;
  const name = input.clientHostname ? clean(input.clientHostname) : 'unknown';
  const lines = [`Received: from ${clean(input.helo) || 'unknown'} (${name} [${literal}])`];
  if (input.tls) {
    const bits = input.tls.bits ? ` (${input.tls.bits}/${input.tls.bits} bits)` : '';
    lines.push(`\t(using ${clean(input.tls.protocol)} with cipher ${clean(input.tls.cipher)}${bits})`);
  }
  if (input.user) lines.push(`\t(Authenticated sender: ${clean(input.user)})`);
  const protocol = withProtocol(input.esmtp, input.tls !== null, input.user !== null);
  lines.push(`\tby ${input.by} (Moat) with ${protocol} id ${input.queueId}`);
  const only = input.recipients.length === 1 ? input.recipients[0] : undefined;
  const forClause = only !== undefined ? `\tfor <${clean(only)}>; ` : '\t';
  lines.push(`${forClause}${rfc5322Date(input.date)}`);
  return `${lines.join('\r\n')}\r\n`;
}
