/**
 * What a config reload may change while Moat runs: the keys new sessions read (domains,
 * allow-lists, users, filters, limits, checks, the log level). Everything else (listen
 * addresses, TLS, Redis, the data directory, delivery tuning, the admin API) was used to start
 * the process and needs a restart: a reload that changes one of those is refused, naming it.
 */
import type { MoatConfig } from './config-schema.js';

export const LIVE_KEYS = [
  'inbound',
  'outbound',
  'smtp.users',
  'smtp.rejectInvalidHelo',
  'smtp.maxErrors',
  'filters',
  'dnsbl',
  'recipients',
  'limits',
  'greylisting',
  'log.level',
] as const;

/** The keys ("section.key", or a top-level key) that differ between the two configs and cannot change live. */
export function changesNeedingRestart(running: Readonly<MoatConfig>, next: Readonly<MoatConfig>): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (LIVE_KEYS.some((k) => path === k || path.startsWith(`${k}.`))) return;
    if (isPlainObject(a) && isPlainObject(b) && !path.includes('.')) {
      // Section by section, key by key: the refusal names a key as docs/configuration.md does.
      for (const key of new Set([...Object.keys(a), ...Object.keys(b)]))
        walk(a[key], b[key], path === '' ? key : `${path}.${key}`);
      return;
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) out.push(path);
  };
  walk(running, next, '');
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
