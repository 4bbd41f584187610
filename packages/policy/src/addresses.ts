/**
 * Envelope addresses (MAIL FROM / RCPT TO paths) per RFC 5321 §4.1.2, with RFC 6531 (SMTPUTF8)
 * local parts: parsed strictly, normalised for comparison, and with every relay trick recorded
 * (address-tricks.ts) so the relay decision can refuse them.
 *
 * Normal form: the local part keeps its case (it is the destination's business) and is written
 * unquoted when it is a dot-atom, else quoted with only `"` and `\` escaped; the domain is a
 * lower-case A-label without a trailing dot, or a bracketed address literal.
 */
import ipaddr from 'ipaddr.js';
import { localPartTricks, type Trick } from './address-tricks.js';
import { isIp } from './cidr.js';
import { normalizeDomain } from './domains.js';

export interface ParsedAddress {
  /** The local part, decoded (no quotes or backslash escapes), case preserved. */
  readonly local: string;
  /** Lower-case A-label, or an address literal such as "[192.0.2.1]" / "[IPv6:2001:db8::1]". */
  readonly domain: string;
  /** Canonical local@domain (the local part quoted only when it must be). */
  readonly address: string;
  /** The local part has non-ASCII characters: relaying this address needs SMTPUTF8. */
  readonly utf8: boolean;
  /** Relay tricks the address used, in the order they appear. */
  readonly tricks: readonly Trick[];
}

export type AddressErrorCode = 'empty' | 'syntax' | 'control-char' | 'multiple-at' | 'too-long';

export interface AddressError {
  readonly error: AddressErrorCode;
  /** A sentence for logs (never sent to the client verbatim). */
  readonly message: string;
}

/** The null reverse-path `<>` of MAIL FROM (bounces, DSNs). */
export interface NullSender {
  readonly null: true;
}

/** RFC 5321 §4.5.3.1 limits in octets (the address limit is RFC 3696 erratum 1690's 254). */
export const ADDRESS_LIMITS = Object.freeze({ local: 64, domain: 255, address: 254, input: 1000 });

export function isAddressError(r: ParsedAddress | AddressError | NullSender): r is AddressError {
  return 'error' in r;
}

export function isNullSender(r: ParsedAddress | AddressError | NullSender): r is NullSender {
  return 'null' in r;
}

/** Never allowed anywhere, not even quoted or escaped: controls (C0, DEL, C1), invisible format characters, lone surrogates, line separators. */
const FORBIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;
/** One atom of a dot-atom: RFC 5321 atext, plus non-ASCII other than spaces (RFC 6531). */
const ATOM = /^(?:[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]|[^\p{Z}\p{ASCII}])+$/u;
const NON_ASCII = /\P{ASCII}/u;

const fail = (error: AddressErrorCode, message: string): AddressError => ({ error, message });

/**
 * Parse a forward-path or reverse-path, with or without angle brackets. Never throws.
 * A source route is stripped (trick 'source-route'); more than one "@" outside quotes is the
 * error 'multiple-at'. The empty path `<>` is an error here: use `parseSender` for MAIL FROM.
 */
export function parseAddress(input: string): ParsedAddress | AddressError {
  if (input.length > ADDRESS_LIMITS.input) return fail('too-long', 'the address is far too long');
  if (FORBIDDEN.test(input)) return fail('control-char', 'the address holds a control character');
  let s = input;
  if (s.startsWith('<') || s.endsWith('>')) {
    if (s.length < 2 || !s.startsWith('<') || !s.endsWith('>')) {
      return fail('syntax', 'unbalanced angle brackets');
    }
    s = s.slice(1, -1);
  }
  if (s === '') return fail('empty', 'the address is empty');

  const tricks: Trick[] = [];
  if (s.startsWith('@')) {
    const colon = s.indexOf(':');
    if (colon < 0) return fail('syntax', 'the local part is empty');
    const route = s.slice(0, colon);
    if (!route.split(',').every((hop) => hop.startsWith('@') && normalizeDomain(hop.slice(1)) !== null)) {
      return fail('syntax', `"${route}" is not a valid source route`);
    }
    tricks.push('source-route');
    s = s.slice(colon + 1);
  }

  let local: string;
  let quoted: boolean;
  let rest: string;
  if (s.startsWith('"')) {
    const q = readQuoted(s);
    if ('error' in q) return q;
    if (q.end >= s.length) return fail('syntax', 'the "@" and domain are missing');
    if (s[q.end] !== '@') return fail('syntax', 'a quoted local part must be followed by "@"');
    local = q.local;
    quoted = true;
    rest = s.slice(q.end + 1);
  } else {
    const at = s.indexOf('@');
    if (at < 0) return fail('syntax', 'the "@" and domain are missing');
    local = s.slice(0, at);
    quoted = false;
    rest = s.slice(at + 1);
  }
  if (rest.includes('@')) {
    return fail(
      'multiple-at',
      local.endsWith('\\')
        ? 'a backslash does not escape "@" outside quotes, so the address has more than one "@"'
        : 'the address has more than one "@" outside quotes',
    );
  }
  if (local === '') return fail('syntax', 'the local part is empty');
  if (!quoted) {
    const problem = dotAtomProblem(local);
    if (problem !== null) return fail('syntax', problem);
  }
  tricks.push(...localPartTricks(local, quoted));

  const domain = parseDomainPart(rest, tricks);
  if (typeof domain !== 'string') return domain;

  const canonicalLocal = formatLocalPart(local);
  if (utf8Length(canonicalLocal) > ADDRESS_LIMITS.local) {
    return fail('too-long', `the local part is longer than ${ADDRESS_LIMITS.local} octets`);
  }
  const address = `${canonicalLocal}@${domain}`;
  if (utf8Length(address) > ADDRESS_LIMITS.address) {
    return fail('too-long', `the address is longer than ${ADDRESS_LIMITS.address} octets`);
  }
  return { local, domain, address, utf8: NON_ASCII.test(local), tricks };
}

/** MAIL FROM: the null sender `<>` (or the empty string smtp-server reports for it), else an address. */
export function parseSender(input: string): ParsedAddress | AddressError | NullSender {
  if (input === '<>' || input === '') return { null: true };
  return parseAddress(input);
}

/** A decoded local part as it is written on the wire: bare if a dot-atom, else quoted. */
export function formatLocalPart(local: string): string {
  return dotAtomProblem(local) === null ? local : `"${local.replace(/["\\]/g, '\\$&')}"`;
}

/** Read a quoted string at the start of `s`: its decoded content and the index after the closing quote. */
function readQuoted(s: string): { local: string; end: number } | AddressError {
  let local = '';
  let i = 1;
  while (i < s.length) {
    const c = s.charAt(i);
    if (c === '"') return { local, end: i + 1 };
    if (c === '\\') {
      const code = s.charCodeAt(i + 1);
      // RFC 5321 quoted-pairSMTP: a backslash escapes one printable ASCII character (or a space).
      if (!(code >= 32 && code <= 126)) {
        return fail('syntax', 'a backslash in a quoted local part must escape a printable ASCII character');
      }
      local += s.charAt(i + 1);
      i += 2;
      continue;
    }
    local += c;
    i += 1;
  }
  return fail('syntax', 'the quoted local part is not closed');
}

/** Why a local part is not a valid dot-atom, or null if it is. */
function dotAtomProblem(local: string): string | null {
  if (local === '') return 'the local part is empty';
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    return 'an unquoted local part must not start or end with "." or hold ".."';
  }
  if (local.split('.').every((atom) => ATOM.test(atom))) return null;
  if (/\s/u.test(local)) return 'a space is not allowed outside quotes';
  if (local.includes('\\')) return 'a backslash is not allowed outside quotes';
  const bad = [...local].find((c) => c !== '.' && !ATOM.test(c)) ?? '?';
  return `"${bad}" is not allowed in an unquoted local part`;
}

/** The domain after "@": a normalised A-label or address literal (recording tricks), or an error. */
function parseDomainPart(text: string, tricks: Trick[]): string | AddressError {
  if (text === '') return fail('syntax', 'the domain is empty');
  if (text.length > ADDRESS_LIMITS.domain) {
    return fail('too-long', `the domain is longer than ${ADDRESS_LIMITS.domain} octets`);
  }
  if (text.startsWith('[')) {
    const literal = text.endsWith(']') ? parseLiteral(text.slice(1, -1)) : null;
    if (literal === null) return fail('syntax', `"${text}" is not an IPv4 or IPv6 address literal`);
    tricks.push('address-literal');
    return literal;
  }
  let name = text;
  if (name.endsWith('.')) {
    tricks.push('trailing-dot');
    name = name.slice(0, -1);
  }
  if (/\s/u.test(name)) return fail('syntax', 'a space is not allowed in the domain');
  const domain = normalizeDomain(name);
  if (domain === null) return fail('syntax', `"${text}" is not a valid domain`);
  // An unbracketed IP address ("user@127.0.0.1") is a literal in disguise: record it as one.
  if (isIp(domain)) {
    tricks.push('address-literal');
    return domain;
  }
  // SMTP wants fully qualified names (RFC 5321 §2.3.5): no "user@localhost"; and no top-level
  // domain is all digits (RFC 3696 §2), so "127.1" and the like are not names either.
  if (!domain.includes('.')) return fail('syntax', `"${text}" is not a fully qualified domain`);
  if (/\.\d+$/.test(domain)) return fail('syntax', `"${text}" is not a valid domain`);
  return domain;
}

/** "192.0.2.1" or "IPv6:2001:db8::1" → the canonical bracketed literal, or null. */
function parseLiteral(body: string): string | null {
  try {
    const v6 = /^ipv6:([0-9a-f:.]+)$/i.exec(body);
    if (v6?.[1] !== undefined) {
      return ipaddr.IPv6.isValid(v6[1]) ? `[IPv6:${ipaddr.IPv6.parse(v6[1]).toString()}]` : null;
    }
    return ipaddr.IPv4.isValidFourPartDecimal(body) ? `[${ipaddr.IPv4.parse(body).toString()}]` : null;
  } catch {
    return null;
  }
}

function utf8Length(s: string): number {
  let n = 0;
  for (const c of s) {
    const cp = c.codePointAt(0) ?? 0;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}
