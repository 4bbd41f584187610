/**
 * Client networks (CIDR, IPv4 and IPv6) for `outbound.clients`. IPv4-mapped IPv6 addresses
 * (`::ffff:192.0.2.1`, what a dual-stack listener reports) match their IPv4 networks.
 */
import ipaddr from 'ipaddr.js';
import type { ParseResult } from './units.js';

export interface Cidr {
  readonly text: string;
  readonly kind: 'ipv4' | 'ipv6';
  readonly range: [ipaddr.IPv4 | ipaddr.IPv6, number];
}

/** "192.168.1.0/24", "2001:db8::/32", or a single address (a /32 or /128). */
export function parseCidr(input: string): ParseResult<Cidr> {
  const text = input.trim();
  const address = text.split('/')[0] ?? '';
  // ipaddr.js accepts old shorthand ("10.0.0/8", "10.1"); a mail admin means four parts.
  if (!address.includes(':') && !ipaddr.IPv4.isValidFourPartDecimal(address)) {
    return {
      ok: false,
      error: `"${text}" is not an IP address or CIDR network (write e.g. 192.168.1.0/24 or 2001:db8::/32)`,
    };
  }
  try {
    if (text.includes('/')) {
      const range = ipaddr.parseCIDR(text);
      const [addr, bits] = range;
      // Reject host bits outside the prefix ("192.168.1.5/24"): usually a typo for a wider or narrower net.
      const network = ipaddr.fromByteArray(networkBytes(addr.toByteArray(), bits));
      if (network.toString() !== addr.toString()) {
        return {
          ok: false,
          error: `"${text}" has host bits set; did you mean ${network.toString()}/${bits}?`,
        };
      }
      return { ok: true, value: { text: `${addr.toString()}/${bits}`, kind: addr.kind(), range } };
    }
    const addr = ipaddr.parse(text);
    const bits = addr.kind() === 'ipv4' ? 32 : 128;
    return {
      ok: true,
      value: { text: `${addr.toString()}/${bits}`, kind: addr.kind(), range: [addr, bits] },
    };
  } catch {
    return {
      ok: false,
      error: `"${text}" is not an IP address or CIDR network (write e.g. 192.168.1.0/24 or 2001:db8::/32)`,
    };
  }
}

function networkBytes(bytes: number[], bits: number): number[] {
  return bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    return b & ((0xff << (8 - keep)) & 0xff);
  });
}

/** Whether `ip` (as a socket reports it) lies in any of the networks. An unparsable ip matches nothing. */
export function ipInAny(ip: string, networks: readonly Cidr[]): boolean {
  // Called several times per message (session, MAIL, RCPT, DATA): an IPv4 address as sockets
  // write it is read here as a number, not parsed by ipaddr.js (its regular expressions were
  // most of the policy's CPU per message).
  const v4 = dottedQuad(ip);
  if (v4 !== null) return networks.some((n) => n.kind === 'ipv4' && inRange(v4, ipv4Range(n)));
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(ip);
  } catch {
    return false;
  }
  return networks.some((n) => n.kind === addr.kind() && addr.match(n.range));
}

/**
 * "a.b.c.d" or "::ffff:a.b.c.d", each part 0–255 in decimal without a leading zero, as an
 * unsigned 32-bit number; null for anything else (which ipaddr.js then parses).
 */
function dottedQuad(ip: string): number | null {
  const start = ip.startsWith('::ffff:') ? 7 : 0;
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = start; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return null;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits === 1 && part === 0) return null;
      part = part * 10 + (c - 0x30);
      if (++digits > 3 || part > 255) return null;
    } else {
      return null;
    }
  }
  return dots === 3 && digits > 0 ? value * 256 + part : null;
}

interface Ipv4Range {
  readonly first: number;
  readonly last: number;
}

const ipv4Ranges = new WeakMap<Cidr, Ipv4Range>();

/** An IPv4 network's first and last address as numbers (worked out once per network). */
function ipv4Range(network: Cidr): Ipv4Range {
  let range = ipv4Ranges.get(network);
  if (range === undefined) {
    const [addr, bits] = network.range;
    const base = addr.toByteArray().reduce((n, byte) => n * 256 + byte, 0);
    const size = 2 ** (32 - bits);
    const first = Math.floor(base / size) * size;
    range = { first, last: first + size - 1 };
    ipv4Ranges.set(network, range);
  }
  return range;
}

const inRange = (n: number, range: Ipv4Range) => n >= range.first && n <= range.last;

/** Whether an address is loopback (127.0.0.0/8, ::1, or IPv4-mapped loopback). */
export function isLoopback(ip: string): boolean {
  try {
    return ipaddr.process(ip).range() === 'loopback';
  } catch {
    return false;
  }
}

/** Whether text is an IP address literal (v4 or v6). */
export function isIp(text: string): boolean {
  // Fast path for the common case, a host name: an IP address has only digits and dots, or a colon.
  if (!text.includes(':') && !/^[\d.]+$/.test(text)) return false;
  return ipaddr.isValid(text) && (ipaddr.IPv4.isValidFourPartDecimal(text) || ipaddr.IPv6.isValid(text));
}
