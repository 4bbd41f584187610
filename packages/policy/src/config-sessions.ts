/**
 * The checks of the connection, MAIL and RCPT phases, as config: DNS block/allow lists,
 * recipient validation of inbound domains, rate limits shared by all edges, greylisting.
 * Every key is documented in docs/configuration.md.
 */
import { z } from 'zod';
import { cidr, duration } from './config-types.js';
import { parseDnsblSite } from './dnsbl.js';
import { parseDomainPattern } from './domains.js';
import { parseRate } from './units.js';

const dnsblSite = z.string().transform((input, ctx) => {
  const r = parseDnsblSite(input);
  if (r.ok) return r.value;
  ctx.issues.push({ code: 'custom', message: r.error, input });
  return z.NEVER;
});

export const dnsblSchema = z.strictObject({
  /** Postfix postscreen_dnsbl_sites syntax: zone[=pattern][*weight]. Empty: no lookups. */
  sites: z.array(dnsblSite).prefault([]),
  /** A client whose summed weight reaches this is refused. */
  threshold: z.number().int('must be a whole number').prefault(1),
  /** All sites are asked at once; one that has not answered by then is skipped. */
  timeout: duration.prefault('2s'),
  /** Refuse at RCPT (default: the log has sender and recipients) or at once at connect. */
  rejectAt: z.enum(['rcpt', 'connect'], { error: 'must be rcpt or connect' }).prefault('rcpt'),
  /** How long a "not listed" answer is kept (a listing is kept for its own DNS TTL). */
  negativeCache: duration.prefault('5m'),
});

const positiveInt = z.number().int('must be a whole number').min(1, 'must be at least 1');

const ldapSource = z.strictObject({
  url: z.string().regex(/^ldaps?:\/\/[^/\s]+\/?$/, 'must be ldap://host[:port] or ldaps://host[:port]'),
  startTls: z.boolean().prefault(false),
  /** null: an anonymous bind. */
  bindDn: z.string().nullable().prefault(null),
  bindPassword: z.string().nullable().prefault(null),
  base: z.string().min(1, 'must name the base DN to search'),
  /** %s is the address (escaped, RFC 4515). */
  filter: z
    .string()
    .refine((f) => f.includes('%s'), 'must contain %s (the address)')
    .prefault('(|(mail=%s)(proxyAddresses=smtp:%s))'),
  timeout: duration.prefault('5s'),
  /** Check the server's certificate (ldaps:// and StartTLS). */
  verifyCertificate: z.boolean().prefault(true),
});

/** One source of a domain's valid recipients; the first that knows the address decides. */
const recipientSource = z.union(
  [
    z.strictObject({ file: z.string().min(1, 'must name a file') }),
    z.strictObject({ ldap: ldapSource }),
    z.strictObject({
      /** Ask the route's smart host (MAIL FROM:<>, RCPT TO, RSET) on one reused connection. */
      callout: z.strictObject({ timeout: duration.prefault('10s') }).prefault({}),
    }),
  ],
  { error: 'must be { file: PATH }, { ldap: { url, base, … } } or { callout: {} }' },
);

export const recipientsSchema = z
  .strictObject({
    /** Inbound domain → its sources. A domain not listed accepts every recipient. */
    domains: z.record(z.string(), z.array(recipientSource).min(1, 'needs at least one source')).prefault({}),
    /** How long a known recipient stays known in the shared cache (it is what keeps mail flowing while every source is away). */
    positiveTtl: duration.prefault('7d'),
    /** How long an unknown one is refused without asking again. */
    negativeTtl: duration.prefault('2h'),
    /** How often a file source is looked at for changes. */
    fileCheckInterval: duration.prefault('10s'),
  })
  .superRefine((section, ctx) => {
    for (const domain of Object.keys(section.domains)) {
      const p = parseDomainPattern(domain);
      if (p === null || p.wildcard)
        ctx.addIssue({ code: 'custom', path: ['domains', domain], message: 'is not a domain name' });
    }
  });

const rate = z.unknown().transform((input, ctx) => {
  if (input === null) return null;
  const r =
    typeof input === 'string'
      ? parseRate(input)
      : { ok: false as const, error: 'must be a rate such as 60/1m' };
  if (r.ok) return r.value;
  ctx.issues.push({ code: 'custom', message: r.error, input });
  return z.NEVER;
});

export const limitsSchema = z.strictObject({
  /** Never limited: these client networks and these SMTP AUTH users. */
  exempt: z
    .strictObject({ clients: z.array(cidr).prefault([]), users: z.array(z.string()).prefault([]) })
    .prefault({}),
  /** Per client address. null = no limit. */
  client: z.strictObject({ connections: rate.prefault(null), messages: rate.prefault(null) }).prefault({}),
  /** Per SMTP AUTH user. */
  user: z.strictObject({ messages: rate.prefault(null), recipients: rate.prefault(null) }).prefault({}),
  /** Per sender domain, outbound mail only. */
  senderDomain: z.strictObject({ messages: rate.prefault(null) }).prefault({}),
});

export const greylistingSchema = z.strictObject({
  enabled: z.boolean().prefault(false),
  /** A retry is accepted no sooner than this after the first try. */
  delay: duration.prefault('5m'),
  /** A first try not retried within this is forgotten. */
  retryWindow: duration.prefault('1d'),
  /** A triplet that passed is let through without delay for this long (renewed on use). */
  passLifetime: duration.prefault('36d'),
  /** Client networks are compared by prefix: senders with server farms retry from a neighbour. */
  ipv4Prefix: positiveInt.max(32, 'must be 1-32').prefault(24),
  ipv6Prefix: positiveInt.max(128, 'must be 1-128').prefault(64),
});

export type DnsblConfig = z.output<typeof dnsblSchema>;
export type RecipientsConfig = z.output<typeof recipientsSchema>;
export type RecipientSource = RecipientsConfig['domains'][string][number];
export type LdapSourceConfig = z.output<typeof ldapSource>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type GreylistingConfig = z.output<typeof greylistingSchema>;
