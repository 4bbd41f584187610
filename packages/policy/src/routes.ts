/**
 * Destinations: where a route sends its mail. The grammar follows Postfix's `relayhost`:
 *   "[192.168.1.254]:2525"  this host, no MX lookup (brackets)
 *   "[mail.example.com]"    this host by A/AAAA, no MX lookup
 *   "mail.example.com"      MX lookup of that name
 * A list of them is tried in order (failover). No destination means MX lookup of the recipient domain.
 */
import { isIp } from './cidr.js';
import type { ParseResult } from './units.js';

export interface NextHop {
  /** Host name (lower-case) or IP address (without brackets). */
  readonly host: string;
  readonly port: number;
  /** true: look up the MX records of `host`; false: connect to `host` itself. */
  readonly mx: boolean;
}

export type TlsMode = 'opportunistic' | 'required' | 'none';

/** A route: a named destination with its delivery options. `hops` empty = MX of the recipient domain. */
export interface Route {
  readonly id: string;
  readonly hops: readonly NextHop[];
  readonly tls: TlsMode;
  readonly auth?: { readonly user: string; readonly pass: string } | undefined;
}

/** The id of the route that delivers by MX lookup of each recipient's domain. */
export const MX_ROUTE_ID = 'mx';

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

export function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => HOST_LABEL.test(label));
}

/** Parse one next hop; `defaultPort` is 25 for relays. */
export function parseNextHop(input: string, defaultPort = 25): ParseResult<NextHop> {
  const text = input.trim();
  const bad = (why: string): ParseResult<NextHop> => ({
    ok: false,
    error: `"${input}" is not a valid host: ${why} (write e.g. [192.168.1.254], [192.168.1.254]:2525, [mail.example.com] or mail.example.com)`,
  });
  let host: string;
  let rest: string;
  let mx: boolean;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return bad('missing "]"');
    host = text.slice(1, close).trim();
    rest = text.slice(close + 1);
    mx = false;
    if (/^ipv6:/i.test(host)) host = host.slice(5);
  } else {
    const colon = text.lastIndexOf(':');
    if (text.indexOf(':') !== colon) return bad('an IPv6 address must be in brackets');
    host = colon < 0 ? text : text.slice(0, colon);
    rest = colon < 0 ? '' : text.slice(colon);
    mx = !isIp(host);
  }
  host = host.toLowerCase().replace(/\.$/, '');
  if (!isIp(host) && !isHostname(host)) return bad(`"${host}" is neither an IP address nor a host name`);
  let port = defaultPort;
  if (rest !== '') {
    const m = /^:(\d{1,5})$/.exec(rest);
    if (!m) return bad('the port must follow as ":number"');
    port = Number(m[1]);
    if (port < 1 || port > 65535) return bad(`port ${port} is out of range 1-65535`);
  }
  return { ok: true, value: { host, port, mx } };
}

/** The canonical text of a hop: what `parseNextHop` reads back to the same hop. */
export function formatNextHop(hop: NextHop): string {
  const host = hop.mx ? hop.host : `[${hop.host}]`;
  return hop.port === 25 ? host : `${host}:${hop.port}`;
}

/** Parse a destination: one hop or a failover list. */
export function parseDestination(
  input: string | readonly string[],
  defaultPort = 25,
): ParseResult<NextHop[]> {
  const items = typeof input === 'string' ? input.split(',') : input;
  if (items.length === 0) return { ok: false, error: 'the host list is empty' };
  const hops: NextHop[] = [];
  for (const item of items) {
    const hop = parseNextHop(item, defaultPort);
    if (!hop.ok) return hop;
    hops.push(hop.value);
  }
  return { ok: true, value: hops };
}

/** A route's id: its canonical destination text ("[192.168.1.254]:2525", "[a],[b]"), or "mx". */
export function routeIdOf(hops: readonly NextHop[]): string {
  return hops.length === 0 ? MX_ROUTE_ID : hops.map(formatNextHop).join(',');
}
