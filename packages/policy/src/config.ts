/**
 * Validate a config document (already read from YAML, with ${ENV} references expanded)
 * into a frozen MoatConfig, or into a list of errors that each name the key and the reason.
 */
import type { z } from 'zod';
import { configSchema, type MoatConfig } from './config-schema.js';
import { describeValue } from './config-types.js';

export interface ConfigError {
  /** The key path as a person would write it: "smtp.maxMessageSize", "outbound.clients[1]". */
  readonly path: string;
  readonly message: string;
}

export type ConfigResult = { ok: true; config: Readonly<MoatConfig> } | { ok: false; errors: ConfigError[] };

export function parseConfig(document: unknown): ConfigResult {
  const result = configSchema.safeParse(document ?? {});
  if (!result.success) return { ok: false, errors: result.error.issues.flatMap(toConfigErrors) };
  return { ok: true, config: deepFreeze(result.data) };
}

/** "smtp.listen[0]", "inbound.domains["example.com"]" */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? '(top level)' : out;
}

function toConfigErrors(issue: z.core.$ZodIssue): ConfigError[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      path: formatPath([...issue.path, key]),
      message: 'is not a known key (see docs/configuration.md)',
    }));
  }
  if (issue.code === 'invalid_type') {
    const got = issue.input === undefined ? 'nothing' : describeValue(issue.input);
    const message =
      issue.input === undefined ? 'is required' : `must be ${article(issue.expected)}, got ${got}`;
    return [{ path: formatPath(issue.path), message }];
  }
  return [{ path: formatPath(issue.path), message: issue.message }];
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

const MASK = '********';

/** The effective config with secrets masked, for `moat config check` and logs. */
export function maskSecrets(config: Readonly<MoatConfig>): unknown {
  const maskRoute = <R extends { auth?: { user: string; pass: string } | undefined }>(r: R): R =>
    r.auth ? { ...r, auth: { ...r.auth, pass: MASK } } : r;
  return {
    ...config,
    redis: { ...config.redis, url: config.redis.url?.replace(/\/\/([^@/]*)@/, `//${MASK}@`) ?? null },
    smtp: { ...config.smtp, users: config.smtp.users.map((u) => ({ ...u, password: MASK })) },
    inbound: {
      domains: Object.fromEntries(Object.entries(config.inbound.domains).map(([d, r]) => [d, maskRoute(r)])),
    },
    outbound: {
      ...config.outbound,
      smarthost: config.outbound.smarthost ? maskRoute(config.outbound.smarthost) : null,
    },
    admin: { ...config.admin, tokens: config.admin.tokens.map((t) => ({ ...t, token: MASK })) },
  };
}
