/**
 * DNS block and allow lists, as Postfix's postscreen weighs them: each site is
 * `zone[=pattern][*weight]` ("zen.spamhaus.org*3", "list.dnswl.org=127.0.[0..255].[0..255]*-2"),
 * a client's score is the sum of the weights of the sites that list it (with an answer the
 * pattern matches), and at `threshold` or more it is refused. Pure: parsing, the query name,
 * scoring. The lookups are @moat/filters'.
 */
import ipaddr from 'ipaddr.js';
import type { ParseResult } from './units.js';

export interface DnsblSite {
  readonly zone: string;
  /** Which 127.x.y.z answers count; null: any. Each octet: values it may take. */
  readonly pattern: readonly (readonly [number, number][])[] | null;
  readonly weight: number;
  /** As written, for replies and logs. */
  readonly text: string;
}

/** Parses one site of `dnsbl.sites`. */
export function parseDnsblSite(input: string): ParseResult<DnsblSite> {
  const text = input.trim();
  const m = /^([A-Za-z0-9._-]+?)(?:=([0-9.[\];]+))?(?:\*(-?\d+))?$/.exec(text);
  const bad = (why: string): ParseResult<DnsblSite> => ({
    ok: false,
    error: `"${input}" ${why} (write zone[=pattern][*weight], e.g. zen.spamhaus.org*3 or list.dnswl.org=127.0.[0..255].[0..255]*-2)`,
  });
  if (!m?.[1] || !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(m[1])) return bad('is not a DNS list site');
  let pattern: [number, number][][] | null = null;
  if (m[2] !== undefined) {
    // Dots between octets, not the ".." of a range inside brackets.
    const octets = m[2].split(/\.(?![^[]*\])/);
    if (octets.length !== 4) return bad('has a pattern that is not four octets');
    pattern = [];
    for (const octet of octets) {
      const ranges = parseOctet(octet);
      if (ranges === null)
        return bad(`has a pattern octet "${octet}" that is not a number, [a..b] or [a;b;c]`);
      pattern.push(ranges);
    }
  }
  return {
    ok: true,
    value: {
      zone: m[1].toLowerCase().replace(/\.$/, ''),
      pattern,
      weight: m[3] === undefined ? 1 : Number(m[3]),
      text,
    },
  };
}

function parseOctet(octet: string): [number, number][] | null {
  const inRange = (n: number) => Number.isInteger(n) && n >= 0 && n <= 255;
  if (/^\d+$/.test(octet)) return inRange(Number(octet)) ? [[Number(octet), Number(octet)]] : null;
  const range = /^\[(\d+)\.\.(\d+)\]$/.exec(octet);
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    return inRange(a) && inRange(b) && a <= b ? [[a, b]] : null;
  }
  const list = /^\[(\d+(?:;\d+)*)\]$/.exec(octet);
  if (list?.[1]) {
    const values = list[1].split(';').map(Number);
    return values.every(inRange) ? values.map((v) => [v, v]) : null;
  }
  return null;
}

/** The name to ask for `ip` in `zone`: reversed octets (IPv4) or reversed nibbles (IPv6). */
export function dnsblQueryName(ip: string, zone: string): string | null {
  if (!ipaddr.isValid(ip)) return null;
  // An IPv4-mapped IPv6 address (::ffff:192.0.2.1) is asked as the IPv4 address it is.
  const addr = ipaddr.process(ip);
  if (addr.kind() === 'ipv4') return `${addr.toByteArray().reverse().join('.')}.${zone}`;
  const nibbles = addr
    .toByteArray()
    .flatMap((byte) => [byte >> 4, byte & 0xf])
    .map((n) => n.toString(16));
  return `${nibbles.reverse().join('.')}.${zone}`;
}

/** Whether an answer (an A record, 127.x.y.z) counts for the site. */
export function answerMatches(site: DnsblSite, answer: string): boolean {
  if (site.pattern === null) return /^127\./.test(answer);
  const octets = answer.split('.').map(Number);
  return site.pattern.every((ranges, i) =>
    ranges.some(([a, b]) => (octets[i] as number) >= a && (octets[i] as number) <= b),
  );
}

/** What each site answered: its A records (empty: not listed), or null when it could not be asked. */
export type DnsblAnswers = ReadonlyMap<string, readonly string[] | null>;

export interface DnsblScore {
  readonly score: number;
  /** Sites that listed the client with a counting answer (weights > 0 first), for the reply. */
  readonly listedBy: readonly DnsblSite[];
  /** Sites that did not answer in time (skipped, never counted as listed). */
  readonly unanswered: readonly DnsblSite[];
}

export function scoreDnsbl(sites: readonly DnsblSite[], answers: DnsblAnswers): DnsblScore {
  let score = 0;
  const listedBy: DnsblSite[] = [];
  const unanswered: DnsblSite[] = [];
  for (const site of sites) {
    const answer = answers.get(site.text);
    if (answer === null || answer === undefined) {
      unanswered.push(site);
      continue;
    }
    if (answer.some((a) => answerMatches(site, a))) {
      score += site.weight;
      listedBy.push(site);
    }
  }
  listedBy.sort((a, b) => b.weight - a.weight);
  return { score, listedBy, unanswered };
}
