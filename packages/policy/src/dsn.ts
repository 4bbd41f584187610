/**
 * Delivery status notifications (RFC 3464, in the RFC 6522 multipart/report container): the
 * message Moat sends to a sender when recipients failed or are delayed. Pure: everything that
 * varies (dates, Message-ID, MIME boundary) is an input, so the same input gives the same bytes.
 */
import { rfc5322Date } from './received.js';

export type DsnAction = 'failed' | 'delayed';

/** The remote answer behind a recipient's status, written as `Diagnostic-Code: smtp; …`. */
export interface DsnDiagnostic {
  readonly code: number;
  readonly text: string;
}

export interface DsnRecipient {
  readonly recipient: string;
  /** Enhanced status code (RFC 3463), e.g. "5.1.1"; see `enhancedStatus`. */
  readonly status: string;
  /** The host that answered (a name or an IP address), when one did. */
  readonly remoteMta?: string | undefined;
  readonly diagnostic?: DsnDiagnostic | undefined;
}

export interface DsnInput {
  readonly action: DsnAction;
  /** Moat's host name (config `hostname`): From: MAILER-DAEMON@…, Reporting-MTA. */
  readonly reportingMta: string;
  /** The original envelope sender, who receives the report. */
  readonly to: string;
  /** Moat's id of the original message. */
  readonly queueId: string;
  readonly arrivalDate: Date;
  readonly date: Date;
  /** The report's own Message-ID, without angle brackets. */
  readonly messageId: string;
  readonly boundary: string;
  readonly recipients: readonly DsnRecipient[];
  /** The original message's header section (see `headerSection`). */
  readonly originalHeaders: string;
  /** RFC 3461 ENVID of the original message. */
  readonly envid?: string | undefined;
  /** For 'delayed': when Moat gives up. */
  readonly willRetryUntil?: Date | undefined;
}

const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])/;

/**
 * The enhanced status code of a remote reply: the one the reply text starts with when its class
 * matches the basic code's, else the class default ("5.0.0", "4.0.0"). Code 0 (no reply: refused,
 * timed out) is "4.4.1".
 */
export function enhancedStatus(code: number, text: string): string {
  const cls = Math.floor(code / 100);
  if (cls !== 2 && cls !== 4 && cls !== 5) return '4.4.1';
  const m = ENHANCED.exec(text.replace(/^\d{3}[ -]/, '').trim());
  return m && Number(m[1]) === cls ? `${m[1]}.${Number(m[2])}.${Number(m[3])}` : `${cls}.0.0`;
}

/** The header section of a raw message (everything before the first empty line), lines ending in CRLF. */
export function headerSection(raw: string): string {
  const end = /\r?\n\r?\n/.exec(raw);
  const head = end ? raw.slice(0, end.index) : raw;
  const lines = head.split(/\r?\n/).filter((line, i, all) => line !== '' || i < all.length - 1);
  return lines.length === 0 ? '' : `${lines.join('\r\n')}\r\n`;
}

/** A header or status field value on one logical line: no control characters, bounded length. */
function clean(text: string, max = 900): string {
  const flat = text
    .replace(/\r?\n(\d{3}[ -])?/g, ' ')
    .replace(/\p{Cc}/gu, ' ')
    .replace(/ {2,}/g, ' ')
    .trim();
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

/** "Name: value", folded at spaces so that lines stay under 78 characters where possible. */
function field(name: string, value: string): string {
  const words = value.split(' ');
  const lines: string[] = [];
  let line = `${name}:`;
  for (const word of words) {
    if (line.length + 1 + word.length > 76 && line.trim().length > name.length + 1) {
      lines.push(line);
      line = `\t${word}`;
    } else {
      line += ` ${word}`;
    }
  }
  lines.push(line);
  return lines.join('\r\n');
}

function diagnosticText(d: DsnDiagnostic): string {
  const text = clean(d.text);
  return d.code > 0 && !text.startsWith(String(d.code)) ? `${d.code} ${text}` : text;
}

function humanPart(input: DsnInput): string {
  const intro =
    input.action === 'failed'
      ? [
          `This is the mail system at host ${input.reportingMta}.`,
          '',
          "I'm sorry to have to inform you that your message could not",
          'be delivered to one or more recipients. It is attached below.',
        ]
      : [
          `This is the mail system at host ${input.reportingMta}.`,
          '',
          '####################################################################',
          '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
          '####################################################################',
          '',
          'Your message could not be delivered yet. The mail system will keep',
          `trying until ${input.willRetryUntil ? rfc5322Date(input.willRetryUntil) : 'the queue lifetime ends'}.`,
        ];
  const lines = [...intro, ''];
  for (const r of input.recipients) {
    const where = r.remoteMta ? ` host ${clean(r.remoteMta, 255)} said:` : '';
    const why = r.diagnostic ? ` ${diagnosticText(r.diagnostic)}` : ` status ${r.status}`;
    lines.push(`<${clean(r.recipient, 320)}>:${where}${why}`);
  }
  return lines.join('\r\n');
}

function statusPart(input: DsnInput): string {
  const message = [
    field('Reporting-MTA', `dns; ${input.reportingMta}`),
    field('X-Moat-Queue-ID', clean(input.queueId, 100)),
  ];
  if (input.envid) message.push(field('Original-Envelope-Id', clean(input.envid, 100)));
  message.push(field('Arrival-Date', rfc5322Date(input.arrivalDate)));
  const blocks = [message.join('\r\n')];
  for (const r of input.recipients) {
    const lines = [
      field('Final-Recipient', `rfc822; ${clean(r.recipient, 320)}`),
      field('Action', input.action),
      field('Status', r.status),
    ];
    if (r.remoteMta) lines.push(field('Remote-MTA', `dns; ${clean(r.remoteMta, 255)}`));
    if (r.diagnostic) lines.push(field('Diagnostic-Code', `smtp; ${diagnosticText(r.diagnostic)}`));
    if (input.action === 'delayed' && input.willRetryUntil) {
      lines.push(field('Will-Retry-Until', rfc5322Date(input.willRetryUntil)));
    }
    blocks.push(lines.join('\r\n'));
  }
  return `${blocks.join('\r\n\r\n')}\r\n`;
}

/** The whole report message, CRLF line endings, ready to be queued with the null sender. */
export function composeDsn(input: DsnInput): string {
  const b = input.boundary;
  const subject =
    input.action === 'failed' ? 'Undelivered Mail Returned to Sender' : 'Delayed Mail (still being retried)';
  const headers = headerSection(input.originalHeaders);
  const eightBit = /\P{ASCII}/u.test(headers);
  return [
    `From: Mail Delivery System <MAILER-DAEMON@${input.reportingMta}>`,
    `To: <${clean(input.to, 320)}>`,
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <${input.messageId}>`,
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status;',
    `\tboundary="${b}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
    `--${b}`,
    'Content-Description: Notification',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    humanPart(input),
    '',
    `--${b}`,
    'Content-Description: Delivery report',
    'Content-Type: message/delivery-status',
    '',
    statusPart(input),
    `--${b}`,
    'Content-Description: Undelivered Message Headers',
    'Content-Type: text/rfc822-headers',
    ...(eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
    '',
    `${headers}`,
    `--${b}--`,
    '',
  ].join('\r\n');
}
