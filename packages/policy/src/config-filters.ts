/**
 * The `filters` block of the config: content scanners (ClamAV, Rspamd, SpamAssassin), sender
 * authentication (SPF, DKIM, DMARC, ARC) of inbound mail, and DKIM signing of outbound mail.
 * Every key is documented in docs/configuration.md and docs/filters.md.
 */
import { z } from 'zod';
import { duration, size } from './config-types.js';
import { parseDomainPattern } from './domains.js';

/** What Moat does with a message a filter flags: in the session (reject, tempfail), or tag it. */
export const FILTER_ACTIONS = ['reject', 'tempfail', 'tag', 'off'] as const;
export type FilterAction = (typeof FILTER_ACTIONS)[number];

const action = z.enum(FILTER_ACTIONS, { error: 'must be reject, tempfail, tag or off' });

/** `action: reject`, or per direction: `action: { inbound: reject, outbound: tag }`. */
function directedAction(inbound: FilterAction, outbound: FilterAction) {
  return z
    .preprocess(
      (input) => (typeof input === 'string' ? { inbound: input, outbound: input } : input),
      z.strictObject({ inbound: action.prefault(inbound), outbound: action.prefault(outbound) }),
    )
    .prefault({});
}

/** A scanner that is unreachable, slow or answers garbage: keep the mail (451) or let it pass. */
const onError = z.enum(['tempfail', 'accept'], { error: 'must be tempfail or accept' });

/** "host:port", "[v6]:port" or an absolute Unix socket path. */
const daemonAddress = (defaultPort: number) =>
  z.string().transform((input, ctx) => {
    if (input.startsWith('/')) return { path: input } as const;
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(input.trim());
    const port = m?.[3] === undefined ? defaultPort : Number(m[3]);
    const host = m?.[1] ?? m?.[2];
    if (!m || host === undefined || !(port >= 1 && port <= 65535)) {
      ctx.issues.push({
        code: 'custom',
        message: `"${input}" is not host:port or an absolute socket path (write e.g. 127.0.0.1:${defaultPort} or /run/clamav/clamd.ctl)`,
        input,
      });
      return z.NEVER;
    }
    return { host, port } as const;
  });
export type DaemonAddress = { readonly host: string; readonly port: number } | { readonly path: string };

const clamav = z.strictObject({
  address: daemonAddress(3310).prefault('127.0.0.1:3310'),
  timeout: duration.prefault('30s'),
  /** clamd's StreamMaxLength: a larger message is never streamed, `oversize` decides. */
  maxSize: size.prefault('25MB'),
  /** A message larger than maxSize: accept it unscanned (counted, logged, tagged), 451, or 552. */
  oversize: z
    .enum(['accept', 'tempfail', 'reject'], { error: 'must be accept, tempfail or reject' })
    .prefault('accept'),
  action: directedAction('reject', 'reject'),
  onError: onError.optional(),
});

const rspamd = z.strictObject({
  url: z
    .string()
    .regex(/^https?:\/\/[^/\s]+\/?$/, 'must be http(s)://host:port of the normal worker (no path)')
    .prefault('http://127.0.0.1:11333'),
  timeout: duration.prefault('15s'),
  /** Sent as the Password header (the controller's; the normal worker needs none). */
  password: z.string().optional(),
  /** What Rspamd's "reject" becomes; "soft reject" is a tempfail and "add header" / "rewrite subject" a tag (unless off). */
  action: directedAction('reject', 'tag'),
  onError: onError.optional(),
});

const spamassassin = z.strictObject({
  address: daemonAddress(783).prefault('127.0.0.1:783'),
  timeout: duration.prefault('15s'),
  /** The spamd user whose preferences apply (SPAMC's User header). */
  user: z.string().optional(),
  /** A message spamd calls spam (score over its required_score) gets this action. */
  action: directedAction('reject', 'tag'),
  /** Optional: only at this score or above is it `action`; from spamd's threshold up to here it is tagged. */
  rejectScore: z.number().optional(),
  onError: onError.optional(),
});

/** Inbound only: mail from the Internet, the only mail whose sender Moat cannot vouch for. */
const authentication = z.strictObject({
  timeout: duration.prefault('10s'),
  /** DMARC fail of a From domain that publishes p=reject. */
  dmarcReject: action.prefault('reject'),
  /** DMARC fail under p=quarantine. */
  dmarcQuarantine: action.prefault('tag'),
  /** SPF fail (-all) when DMARC does not decide (no DMARC record, or p=none). */
  spfFail: action.prefault('off'),
  /** ARC: trust a passing ARC chain sealed by these domains to override a DMARC fail. */
  trustedArcSealers: z.array(z.string()).prefault([]),
  onError: onError.optional(),
});

const selectorName = z
  .string()
  .regex(
    /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/,
    {
      message: 'must be a DNS label (letters, digits, "-"), or labels joined by "."',
    },
  );

const dkimKey = z.strictObject({
  selector: selectorName,
  /** PEM file of the private key: RSA (2048 bits or more recommended) or Ed25519. */
  key: z.string().min(1, 'must name a PEM file'),
});

export const DEFAULT_DKIM_HEADERS = [
  'from',
  'sender',
  'reply-to',
  'subject',
  'date',
  'message-id',
  'to',
  'cc',
  'mime-version',
  'content-type',
  'content-transfer-encoding',
  'content-language',
  'in-reply-to',
  'references',
  'list-id',
  'list-unsubscribe',
  'list-unsubscribe-post',
] as const;

const dkim = z
  .strictObject({
    /** Sender domain (the From header's) → its keys; several for rotation (each signs). */
    domains: z.record(z.string(), z.array(dkimKey).min(1, 'needs at least one selector')).prefault({}),
    headers: z
      .array(z.string().regex(/^[\x21-\x39\x3b-\x7e]+$/, 'must be a header field name'))
      .prefault([...DEFAULT_DKIM_HEADERS])
      .transform((list) => list.map((h) => h.toLowerCase())),
    /** A signing failure (a key Moat could not use at run time): 451, or send unsigned. */
    onError: onError.optional(),
  })
  .superRefine((section, ctx) => {
    if (!section.headers.includes('from'))
      ctx.addIssue({ code: 'custom', path: ['headers'], message: 'must include "from" (RFC 6376 §5.4)' });
    for (const [domain, keys] of Object.entries(section.domains)) {
      const pattern = parseDomainPattern(domain);
      if (pattern === null || pattern.wildcard)
        ctx.addIssue({ code: 'custom', path: ['domains', domain], message: 'is not a domain name' });
      const seen = new Set<string>();
      keys.forEach((k, i) => {
        if (seen.has(k.selector.toLowerCase()))
          ctx.addIssue({
            code: 'custom',
            path: ['domains', domain, i, 'selector'],
            message: `"${k.selector}" is listed twice for ${domain}`,
          });
        seen.add(k.selector.toLowerCase());
      });
    }
  });

export const filtersSchema = z.strictObject({
  /** The default onError of every filter that does not set its own. */
  onError: onError.prefault('tempfail'),
  /** How often each edge asks the filters' daemons whether they answer (/ready, moat_filter_up). */
  probeInterval: duration.prefault('10s'),
  clamav: clamav.nullable().prefault(null),
  rspamd: rspamd.nullable().prefault(null),
  spamassassin: spamassassin.nullable().prefault(null),
  authentication: authentication.nullable().prefault(null),
  dkim: dkim.nullable().prefault(null),
});

export type FiltersConfig = z.output<typeof filtersSchema>;
export type ClamavConfig = NonNullable<FiltersConfig['clamav']>;
export type RspamdConfig = NonNullable<FiltersConfig['rspamd']>;
export type SpamassassinConfig = NonNullable<FiltersConfig['spamassassin']>;
export type AuthenticationConfig = NonNullable<FiltersConfig['authentication']>;
export type DkimConfig = NonNullable<FiltersConfig['dkim']>;
