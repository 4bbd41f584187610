/**
 * The decisions of the connection, MAIL and RCPT checks (envelope hygiene, HELO, recipient
 * validation, greylisting, rate limits): plain data in, a reply or null out. The lookups,
 * caches and counters they decide on are the I/O packages'.
 */
import ipaddr from 'ipaddr.js';
import type { GreylistingConfig } from './config-sessions.js';
import type { DnsblSite } from './dnsbl.js';
import { type Reply, reply } from './replies.js';
import { isHostname } from './routes.js';
import { formatDuration, formatRate, type Rate } from './units.js';

/** One printable line of outside text in a reply (an address, a zone). */
const printable = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').slice(0, 256);

/**
 * An envelope address as smtp-server decoded it (UTF-8; bytes that are not UTF-8 became
 * U+FFFD): refused when it is not valid UTF-8, or not ASCII without SMTPUTF8 (RFC 6531).
 */
export function addressEncodingError(
  address: string,
  smtpUtf8: boolean,
  role: 'sender' | 'recipient',
): Reply | null {
  if (address.includes('\uFFFD'))
    return role === 'sender'
      ? reply(501, '5.1.7', 'Bad sender address syntax: not valid UTF-8')
      : reply(553, '5.1.3', 'Bad recipient address syntax: not valid UTF-8');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the check is for any byte over 0x7f
  if (!smtpUtf8 && /[^\x00-\x7f]/.test(address))
    return reply(553, '5.6.7', `Non-ASCII ${role} address without SMTPUTF8`);
  return null;
}

/** A HELO/EHLO argument that is a host name or an address literal ([192.0.2.1], [IPv6:…]). */
export function isValidHelo(helo: string): boolean {
  const literal = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(helo);
  if (literal?.[1])
    return ipaddr.isValid(literal[1]) && (helo.startsWith('[IPv6:') || !literal[1].includes(':'));
  return helo.includes('.') && isHostname(helo.replace(/\.$/, ''));
}

export const invalidHelo = reply(501, '5.5.2', 'Invalid HELO/EHLO name (a host name or an address literal)');

/** Refused by a DNS block list (the heaviest listing site is named). */
export function dnsblRefusal(clientIp: string, sites: readonly DnsblSite[]): Reply {
  const zone = sites[0]?.zone ?? 'a DNS block list';
  return reply(554, '5.7.1', `Service unavailable; client [${printable(clientIp)}] blocked using ${zone}`);
}

export type RecipientAnswer = 'known' | 'unknown' | 'error';

export interface RecipientDecision {
  readonly action: 'accept' | 'reject' | 'defer';
  readonly reply?: Reply;
  /** What to keep in the shared cache: known, unknown, or nothing (a source failed). */
  readonly cache: 'known' | 'unknown' | null;
}

/**
 * A recipient of an inbound domain, from what its sources said: any "known" accepts; all
 * "unknown" refuses (550 5.1.1); a source that failed, with none knowing it, defers (450 4.1.1,
 * never a 550: the sender tries later, when the source is back).
 */
export function decideRecipientAnswers(
  address: string,
  answers: readonly RecipientAnswer[],
): RecipientDecision {
  if (answers.includes('known')) return { action: 'accept', cache: 'known' };
  if (answers.includes('error')) return { action: 'defer', reply: recipientUnverified(address), cache: null };
  return { action: 'reject', reply: recipientUnknown(address), cache: 'unknown' };
}

export function recipientUnknown(address: string): Reply {
  return reply(550, '5.1.1', `<${printable(address)}>: Recipient address rejected: User unknown`);
}

export function recipientUnverified(address: string): Reply {
  return reply(
    450,
    '4.1.1',
    `<${printable(address)}>: Recipient address rejected: unverified address, try again later`,
  );
}

/** The greylisting triplet: the client's network (/24, /64 by default), sender, recipient. */
export function greylistTriplet(
  clientIp: string,
  sender: string,
  recipient: string,
  config: GreylistingConfig,
): string {
  let network = clientIp;
  if (ipaddr.isValid(clientIp)) {
    const addr = ipaddr.process(clientIp);
    const bits = addr.kind() === 'ipv4' ? config.ipv4Prefix : config.ipv6Prefix;
    const bytes = addr.toByteArray().map((byte, i) => {
      const keep = Math.max(0, Math.min(8, bits - i * 8));
      return byte & (0xff << (8 - keep)) & 0xff;
    });
    network = `${ipaddr.fromByteArray(bytes).toString()}/${bits}`;
  }
  return `${network}|${(sender || '<>').toLowerCase()}|${recipient.toLowerCase()}`;
}

export function greylisted(retryAfterMs: number): Reply {
  return reply(
    450,
    '4.7.1',
    `Greylisted, please try again in ${formatDuration(Math.max(1000, Math.ceil(retryAfterMs / 1000) * 1000))}`,
  );
}

/** The rate limits Moat keeps, by what they count. */
export type LimitName =
  | 'client-connections'
  | 'client-messages'
  | 'user-messages'
  | 'user-recipients'
  | 'sender-domain-messages';

const LIMIT_TEXT: Record<LimitName, string> = {
  'client-connections': 'connections per client address',
  'client-messages': 'messages per client address',
  'user-messages': 'messages per authenticated user',
  'user-recipients': 'recipients per authenticated user',
  'sender-domain-messages': 'messages per sender domain',
};

/** Over a limit: 421 at connect, 450 at MAIL and RCPT; never a 5xx, the limit in the text. */
export function rateLimited(name: LimitName, rate: Rate): Reply {
  const what = `Rate limit exceeded: ${formatRate(rate)} ${LIMIT_TEXT[name]}, try again later`;
  return name === 'client-connections' ? reply(421, '4.7.0', what) : reply(450, '4.7.1', what);
}
