/**
 * The relay decision at RCPT time, pure: (policy, client, recipient) → Verdict.
 *
 * The rules, and why:
 *  1. Syntax errors are refused with 553 5.1.3 (reason 'syntax'); the exception is more than one
 *     "@" outside quotes, which is a relay trick (reason 'trick:multiple-at'): 550 5.7.1 for an
 *     untrusted client, like every other relay attempt, 553 5.1.3 for a trusted one (for whom it
 *     is just a malformed address).
 *  2. Address literals are refused for everyone (550 5.7.1, 'trick:address-literal'): Moat never
 *     delivers to a literal, so accepting one could only end in a bounce, or in delivery to a
 *     host (loopback, an internal address) no route was configured for.
 *  3. A recipient without tricks whose domain is one of ours is accepted inbound from anyone:
 *     that is what an edge relay is for.
 *  4. A recipient with any trick is never accepted inbound, even if its final domain is ours:
 *     every trick exists to make a server forward mail somewhere other than where the domain
 *     after the "@" says, so an untrusted client gets 550 5.7.1 ('trick:<name>').
 *  5. A trusted client (its address in outbound.clients, or an authenticated user when
 *     outbound.authenticated is true) may relay anywhere; its tricky-but-well-formed addresses
 *     (percent hack, bang path, quoted "@", trailing dot) are ordinary mailboxes at the domain
 *     after the real "@", and a source route has already been stripped by the parser. They are
 *     accepted as 'outbound' and delivered to that domain: by its inbound route if it is ours
 *     (sending our own domain out by MX would only come back to us), else by the outbound route.
 *  6. Anything else is 550 5.7.1 Relaying denied ('relay-denied').
 */
import type { Trick } from './address-tricks.js';
import { isAddressError, type ParsedAddress, parseAddress } from './addresses.js';
import { type Cidr, ipInAny, parseCidr } from './cidr.js';
import type { MoatConfig } from './config-schema.js';
import { type DomainPattern, domainMatches, parseDomainPattern } from './domains.js';
import { Replies, type Reply } from './replies.js';
import { MX_ROUTE_ID, parseDestination, type Route, routeIdOf, type TlsMode } from './routes.js';

export interface InboundDomain {
  readonly pattern: DomainPattern;
  readonly route: Route;
}

export interface RelayPolicy extends InboundIndex<InboundDomain> {
  readonly clients: readonly Cidr[];
  readonly authenticated: boolean;
  /** Where mail for other domains goes: the smart host route, or the MX route. */
  readonly outbound: Route;
  /** Every route by id: the inbound routes and the outbound one. */
  readonly routes: ReadonlyMap<string, Route>;
  /**
   * Where the domainless `RCPT TO:<postmaster>` goes (RFC 5321 §4.1.1.3 says it must be
   * accepted): postmaster at the first exact inbound domain, or null when there is none.
   */
  readonly postmaster: string | null;
}

export interface RelayContext {
  /** The client's address as the socket (or PROXY header) reports it. */
  readonly clientIp: string;
  /** The SMTP AUTH user, or null when the session is not authenticated. */
  readonly user: string | null;
}

export type Verdict =
  | {
      readonly action: 'accept';
      /** inbound: one of our domains; outbound: accepted because the client is trusted. */
      readonly direction: 'inbound' | 'outbound';
      readonly route: Route;
      readonly recipient: ParsedAddress;
    }
  | {
      readonly action: 'reject';
      readonly reply: Reply;
      /** Stable machine code: 'syntax', 'relay-denied', 'trick:<trick>'. */
      readonly reason: string;
      /** A sentence for logs (the parser's message for syntax errors). */
      readonly detail?: string;
    };

interface RouteSource {
  readonly hosts: readonly string[];
  readonly tls: TlsMode;
  readonly auth?: { readonly user: string; readonly pass: string } | undefined;
}

/**
 * Precompile the relay rules from a validated config. Throws if a route cannot be built
 * (the config schema already checked every host list) or if two entries send to the same
 * hosts with different tls/auth settings (see `routeConflicts`).
 */
export function compileRelayPolicy(config: MoatConfig): RelayPolicy {
  const routes = new Map<string, { route: Route; key: string }>();
  const routeOf = (key: string, source: RouteSource): Route => {
    const hops = parseDestination(source.hosts);
    if (!hops.ok) throw new Error(`${key}: ${hops.error}`);
    const route: Route = {
      id: routeIdOf(hops.value),
      hops: hops.value,
      tls: source.tls,
      ...(source.auth ? { auth: source.auth } : {}),
    };
    const earlier = routes.get(route.id);
    if (earlier === undefined) {
      routes.set(route.id, { route, key });
      return route;
    }
    if (!sameOptions(earlier.route, route)) {
      throw new Error(
        `${key} and ${earlier.key} both send to ${route.id} but with different tls or auth settings`,
      );
    }
    return earlier.route;
  };

  const { exact, wildcards } = indexInbound(
    Object.entries(config.inbound.domains).map(([text, target]) => {
      const pattern = parseDomainPattern(text);
      if (pattern === null) throw new Error(`inbound.domains.${text}: is not a domain name`);
      return { pattern, route: routeOf(`inbound.domains.${text}`, target) };
    }),
  );

  const smarthost = config.outbound.smarthost;
  const outbound =
    smarthost === null
      ? { id: MX_ROUTE_ID, hops: [], tls: config.delivery.tls }
      : routeOf('outbound.smarthost', smarthost);
  if (smarthost === null) {
    const clash = routes.get(MX_ROUTE_ID);
    if (clash) throw new Error(`${clash.key}: the host "mx" clashes with the id of the MX route`);
    routes.set(MX_ROUTE_ID, { route: outbound, key: 'delivery.tls' });
  }

  const clients = config.outbound.clients.map((text) => {
    const r = parseCidr(text);
    if (!r.ok) throw new Error(`outbound.clients: ${r.error}`);
    return r.value;
  });

  return {
    exact,
    wildcards,
    clients,
    authenticated: config.outbound.authenticated,
    outbound,
    routes: new Map([...routes].map(([id, { route }]) => [id, route])),
    postmaster: exact.size > 0 ? `postmaster@${[...exact.keys()][0]}` : null,
  };
}

/**
 * Entries of the config that send to the same hosts with different tls/auth settings; they
 * would have to share one route (one queue), so one of the settings would be ignored.
 * For the config schema's checks: each item names the later key and what is wrong.
 */
export function routeConflicts(config: MoatConfig): { path: string[]; message: string }[] {
  const seen = new Map<string, { key: string; source: RouteSource }>();
  const conflicts: { path: string[]; message: string }[] = [];
  const entries: [string[], RouteSource][] = Object.entries(config.inbound.domains).map(([text, target]) => [
    ['inbound', 'domains', text],
    target,
  ]);
  if (config.outbound.smarthost) entries.push([['outbound', 'smarthost'], config.outbound.smarthost]);
  for (const [path, source] of entries) {
    const id = source.hosts.join(',');
    const earlier = seen.get(id);
    if (earlier === undefined) seen.set(id, { key: path.join('.'), source });
    else if (!sameOptions(earlier.source, source)) {
      conflicts.push({
        path,
        message: `sends to ${id} like ${earlier.key}, but with different tls or auth settings (use the same ones)`,
      });
    }
  }
  return conflicts;
}

function sameOptions(a: Pick<RouteSource, 'tls' | 'auth'>, b: Pick<RouteSource, 'tls' | 'auth'>): boolean {
  return a.tls === b.tls && a.auth?.user === b.auth?.user && a.auth?.pass === b.auth?.pass;
}

/** The inbound entry for a normalised domain: an exact name beats any wildcard, a longer wildcard a shorter one. */
export function findInbound<T extends { readonly pattern: DomainPattern }>(
  index: InboundIndex<T>,
  domain: string,
): T | undefined {
  return index.exact.get(domain) ?? index.wildcards.find((w) => domainMatches(domain, w.pattern));
}

/** Inbound entries as findInbound searches them (a RelayPolicy is one). */
export interface InboundIndex<T> {
  /** Exact domains by name. */
  readonly exact: ReadonlyMap<string, T>;
  /** Wildcard patterns, longest (most specific) domain first. */
  readonly wildcards: readonly T[];
}

/** Index inbound entries for findInbound: the config check uses it on the raw config too. */
export function indexInbound<T extends { readonly pattern: DomainPattern }>(
  entries: readonly T[],
): { exact: Map<string, T>; wildcards: T[] } {
  const exact = new Map<string, T>();
  const wildcards: T[] = [];
  for (const entry of entries) {
    if (entry.pattern.wildcard) wildcards.push(entry);
    else exact.set(entry.pattern.domain, entry);
  }
  wildcards.sort((a, b) => b.pattern.domain.length - a.pattern.domain.length);
  return { exact, wildcards };
}

/** Whether the client may relay to any domain. */
export function isTrusted(policy: RelayPolicy, ctx: RelayContext): boolean {
  return ipInAny(ctx.clientIp, policy.clients) || (ctx.user !== null && policy.authenticated);
}

/** Decide one RCPT TO (see the rules at the top of this file). */
export function decideRecipient(policy: RelayPolicy, ctx: RelayContext, recipient: string): Verdict {
  const bare = recipient.replace(/^<|>$/g, '');
  if (policy.postmaster !== null && bare.toLowerCase() === 'postmaster') {
    return decideRecipient(policy, ctx, policy.postmaster);
  }
  const parsed = parseAddress(recipient);
  const trusted = isTrusted(policy, ctx);
  if (isAddressError(parsed)) {
    if (parsed.error === 'multiple-at') {
      return reject(
        trusted ? Replies.badRecipientSyntax : Replies.relayDenied,
        trick('multiple-at'),
        parsed.message,
      );
    }
    return reject(Replies.badRecipientSyntax, 'syntax', parsed.message);
  }
  if (parsed.tricks.includes('address-literal')) {
    return reject(Replies.relayDenied, trick('address-literal'), 'Moat never delivers to an address literal');
  }
  const first = parsed.tricks[0];
  const inbound = parsed.domain.startsWith('[') ? undefined : findInbound(policy, parsed.domain);
  if (first === undefined && inbound !== undefined) {
    return { action: 'accept', direction: 'inbound', route: inbound.route, recipient: parsed };
  }
  if (trusted) {
    return {
      action: 'accept',
      direction: 'outbound',
      route: inbound?.route ?? policy.outbound,
      recipient: parsed,
    };
  }
  return first === undefined
    ? reject(Replies.relayDenied, 'relay-denied')
    : reject(Replies.relayDenied, trick(first), `the recipient uses a relay trick (${first})`);
}

const trick = (t: Trick): string => `trick:${t}`;

function reject(reply: Reply, reason: string, detail?: string): Verdict {
  return detail === undefined
    ? { action: 'reject', reply, reason }
    : { action: 'reject', reply, reason, detail };
}

export interface RouteGroup {
  readonly route: Route;
  readonly recipients: string[];
}

/**
 * The accepted recipients of a transaction grouped by route id (one job per route), in the order
 * they were given, each canonical address once. Rejected verdicts are skipped.
 */
export function groupByRoute(verdicts: readonly Verdict[]): Map<string, RouteGroup> {
  const groups = new Map<string, RouteGroup>();
  for (const v of verdicts) {
    if (v.action !== 'accept') continue;
    let group = groups.get(v.route.id);
    if (group === undefined) {
      group = { route: v.route, recipients: [] };
      groups.set(v.route.id, group);
    }
    if (!group.recipients.includes(v.recipient.address)) group.recipients.push(v.recipient.address);
  }
  return groups;
}
