/**
 * Sender authentication of inbound mail with mailauth: SPF (client IP, HELO, MAIL FROM), DKIM
 * verification, DMARC with the policy of the From domain, ARC. Every lookup goes through the
 * resolver given (Moat's dns.servers). The result is reduced to the data the policy core
 * decides on, with mailauth's Authentication-Results and Received-SPF header fields, which
 * carry Moat's hostname as authserv-id.
 */
import { Resolver } from 'node:dns/promises';
import type { AuthenticationResult } from '@moat/policy';
import { authenticate } from 'mailauth';

export interface AuthenticationEnvelope {
  readonly clientIp: string;
  readonly helo: string;
  readonly sender: string;
}

/** mailauth's resolver: (name, rrtype) → records, as dns.promises.resolve answers. */
export type LookupFunction = (name: string, rrtype: string) => Promise<unknown>;

/**
 * A lookup function that asks only `servers` (the system's resolvers when empty). Answers, and
 * the definite negatives (NXDOMAIN, no data), are kept for `cacheMs`; the same question in
 * flight is asked once. Failures (SERVFAIL, timeouts) are never kept: they are temperrors,
 * and the next message asks again. The same sender domains come back message after message,
 * mostly with negative answers, which Node's resolver does not keep.
 */
export function lookupThrough(
  servers: readonly string[],
  timeoutMs: number,
  cacheMs = 30_000,
): LookupFunction {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) resolver.setServers([...servers]);
  const cache = new Map<string, { expires: number; answer: Promise<unknown> }>();
  return (name, rrtype) => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.expires > now) return hit.answer;
    if (cache.size >= MAX_CACHED) cache.clear();
    const answer = resolver.resolve(name, rrtype);
    const entry = { expires: now + cacheMs, answer };
    cache.set(key, entry);
    answer.catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTFOUND' && err.code !== 'ENODATA' && cache.get(key) === entry) cache.delete(key);
    });
    return answer;
  };
}

const MAX_CACHED = 10_000;

export async function authenticateSender(
  body: Buffer,
  envelope: AuthenticationEnvelope,
  options: { mta: string; lookup: LookupFunction },
): Promise<AuthenticationResult> {
  const r = await authenticate(body, {
    ip: envelope.clientIp,
    helo: envelope.helo,
    sender: envelope.sender,
    mta: options.mta,
    resolver: options.lookup as never,
    disableBimi: true,
  });
  const dkimResults = r.dkim?.results ?? [];
  const dkim = dkimResults.some((d) => d.status?.result === 'pass')
    ? 'pass'
    : (dkimResults[0]?.status?.result ?? 'none');
  const dmarc = r.dmarc
    ? {
        result: r.dmarc.status?.result ?? 'none',
        ...(r.dmarc.policy ? { policy: r.dmarc.policy } : {}),
        ...(r.dmarc.status?.header?.from ? { domain: r.dmarc.status.header.from } : {}),
      }
    : { result: 'none' };
  const sealer = r.arc && r.arc.signature ? r.arc.signature.signingDomain : undefined;
  const arc = r.arc
    ? { result: r.arc.status?.result ?? 'none', ...(sealer ? { sealer } : {}) }
    : { result: 'none' };
  return {
    spf: r.spf ? (r.spf.status?.result ?? 'none') : 'none',
    ...(r.spf && r.spf.domain ? { spfDomain: r.spf.domain } : {}),
    dkim,
    dmarc,
    arc,
    // One CRLF-terminated block, as the edge prepends header fields.
    headers: r.headers ? [r.headers.replace(/\r?\n/g, '\r\n')] : [],
  };
}
