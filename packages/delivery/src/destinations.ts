/**
 * Where one attempt may connect, in order: the next-hop candidates of a route for one
 * recipient domain. Smart hosts: the configured list in order (failover), "[host]" without MX
 * lookup, "name" by MX lookup of that name. The MX route: the recipient domain's MX hosts.
 */
import type { NextHop, Route } from '@moat/policy';
import type { DnsFailure, DnsResolver, MxHost } from './dns-resolver.js';

/** One address to connect to. */
export interface Target {
  readonly address: string;
  readonly port: number;
  /** The host name the address belongs to (for TLS SNI and logs), or the address itself. */
  readonly name: string;
}

export type Candidates = { readonly ok: true; readonly targets: readonly Target[] } | DnsFailure;

/** At most this many addresses are tried in one attempt (Postfix: smtp_mx_address_limit 5). */
export const MAX_TARGETS = 10;

/** "mx1.example.net[192.0.2.1]:25": a target as logs and tracking events show it. */
export function describeTarget(t: Target): string {
  return t.name === t.address ? `[${t.address}]:${t.port}` : `${t.name}[${t.address}]:${t.port}`;
}

/**
 * The targets for `domain` on `route`. `mxPort` is the port of hosts found by MX lookup of
 * a recipient domain (and of a smart host named without brackets or port). Failures of a smart host's name are never permanent (that is a
 * configuration matter, not the recipient's); those of a recipient domain can be.
 */
export async function findTargets(
  resolver: DnsResolver,
  route: Route,
  domain: string,
  mxPort: number,
): Promise<Candidates> {
  if (route.hops.length === 0) return viaMx(resolver, domain, mxPort, true);
  const targets: Target[] = [];
  let failure: DnsFailure | undefined;
  for (const hop of route.hops) {
    const found = await hopTargets(resolver, hop, mxPort);
    if (found.ok) targets.push(...found.targets);
    else failure ??= { ...found, permanent: false, status: '4.4.3' };
  }
  if (targets.length > 0) return { ok: true, targets: dedupe(targets) };
  return failure ?? { ok: false, permanent: false, status: '4.4.3', text: 'the route has no hosts' };
}

/** A hop by MX lookup without its own port ("relay.example.net") uses `mxPort` like any MX host. */
function hopTargets(resolver: DnsResolver, hop: NextHop, mxPort: number): Promise<Candidates> {
  if (hop.mx) return viaMx(resolver, hop.host, hop.port === 25 ? mxPort : hop.port, false);
  return addressTargets(resolver, hop.host, hop.port);
}

async function addressTargets(resolver: DnsResolver, host: string, port: number): Promise<Candidates> {
  const found = await resolver.addresses(host);
  if (!found.ok) return found;
  return { ok: true, targets: found.addresses.map((address) => ({ address, port, name: host })) };
}

async function viaMx(
  resolver: DnsResolver,
  domain: string,
  port: number,
  recipientDomain: boolean,
): Promise<Candidates> {
  const mx = await resolver.mx(domain);
  if (!mx.ok) return recipientDomain ? mx : { ...mx, permanent: false };
  const resolved = await Promise.all(mx.hosts.map((h: MxHost) => addressTargets(resolver, h.exchange, port)));
  const targets = resolved.flatMap((r) => (r.ok ? r.targets : []));
  if (targets.length > 0) return { ok: true, targets: dedupe(targets) };
  const failures = resolved.flatMap((r) => (r.ok ? [] : [r]));
  const transient = failures.find((f) => !f.permanent);
  if (transient) return transient;
  const implicit = mx.hosts.length === 1 && mx.hosts[0]?.implicit === true;
  return {
    ok: false,
    permanent: recipientDomain,
    status: implicit ? '5.1.2' : '5.4.4',
    text: implicit
      ? `domain ${domain} has neither MX nor address records`
      : `no MX host of ${domain} has an address`,
  };
}

function dedupe(targets: readonly Target[]): Target[] {
  const seen = new Set<string>();
  const out: Target[] = [];
  for (const t of targets) {
    const key = `${t.address}|${t.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(t);
    if (out.length >= MAX_TARGETS) break;
  }
  return out;
}
