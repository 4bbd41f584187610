/**
 * Reusable field types for the config schema: each parses what a person writes
 * ("35MB", "5m", "[192.168.1.254]:2525", "10.0.0.0/8") into plain, normalised data,
 * or reports why not. The schema itself is in config-schema.ts.
 */
import { z } from 'zod';
import { parseCidr } from './cidr.js';
import { formatNextHop, isHostname, parseDestination } from './routes.js';
import { type ParseResult, parseDuration, parseSize } from './units.js';

function fromParser<T>(parse: (input: string | number) => ParseResult<T>) {
  return z.unknown().transform((input, ctx) => {
    const r =
      typeof input === 'string' || typeof input === 'number'
        ? parse(input)
        : { ok: false as const, error: `expected a string or number, got ${describeValue(input)}` };
    if (r.ok) return r.value;
    ctx.issues.push({ code: 'custom', message: r.error, input });
    return z.NEVER;
  });
}

/** A config value as an error message names it: "null", "a list", "a mapping", "number 5". */
export function describeValue(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'a list';
  return typeof input === 'object' ? 'a mapping' : `${typeof input} ${JSON.stringify(input)}`;
}

/** A size such as "35MB"; the result is bytes. */
export const size = fromParser(parseSize);

/** A duration such as "5m" or "1h30m"; the result is milliseconds. */
export const duration = fromParser(parseDuration);

export const port = z
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'port must be 1-65535')
  .max(65535, 'port must be 1-65535');

/** "host:port", "[::1]:25", or ":25" (all addresses). Result: { host, port }. */
export const listenAddress = z.string().transform((input, ctx) => {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(input.trim());
  const host = m ? (m[1] ?? m[2] ?? '') : '';
  const portNumber = m ? Number(m[3]) : Number.NaN;
  if (!m || !(portNumber >= 1 && portNumber <= 65535)) {
    ctx.issues.push({
      code: 'custom',
      message: `"${input}" is not a listen address with a port 1-65535 (write e.g. 0.0.0.0:25, [::]:25, 127.0.0.1:8025)`,
      input,
    });
    return z.NEVER;
  }
  return { host: host === '' ? '0.0.0.0' : host, port: portNumber };
});

/** An IP network in CIDR notation (or a single address); the result is the normalised text. */
export const cidr = z.string().transform((input, ctx) => {
  const r = parseCidr(input);
  if (r.ok) return r.value.text;
  ctx.issues.push({ code: 'custom', message: r.error, input });
  return z.NEVER;
});

export const hostname = z.string().refine((h) => isHostname(h.toLowerCase().replace(/\.$/, '')), {
  message: 'must be a fully qualified host name (letters, digits, hyphens, dots)',
});

/** One host or a failover list: "[192.168.1.254]:2525", "mail.example.com", ["[a]", "[b]"]. */
export const hostList = z
  .union([z.string(), z.array(z.string()).min(1)], {
    error: 'must be a host ("[192.168.1.254]", "mx.example.net:25") or a list of them',
  })
  .transform((input, ctx) => {
    const r = parseDestination(input);
    if (r.ok) return r.value.map(formatNextHop);
    ctx.issues.push({ code: 'custom', message: r.error, input });
    return z.NEVER;
  });

export const tlsMode = z.enum(['opportunistic', 'required', 'none']);

/** A route: a host list (shorthand) or { hosts, tls, auth }. */
export const routeConfig = z.preprocess(
  (input) => (typeof input === 'string' || Array.isArray(input) ? { hosts: input } : input),
  z.strictObject({
    hosts: hostList,
    tls: tlsMode.prefault('opportunistic'),
    auth: z.strictObject({ user: z.string().min(1), pass: z.string().min(1) }).optional(),
  }),
);

export type RouteConfig = z.output<typeof routeConfig>;
