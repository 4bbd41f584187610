/**
 * Where a config comes from: a YAML file (or the embedded default), with ${VAR} and
 * ${VAR:-default} references expanded from the environment, then MOAT_* overrides
 * (MOAT_SMTP__MAX_MESSAGE_SIZE=50MB sets smtp.maxMessageSize). Validation is the policy
 * core's; this module only reads and reports.
 */
import { readFileSync } from 'node:fs';
import { checkDkimKeys } from '@moat/filters';
import { type ConfigError, configSchema, formatPath, type MoatConfig, parseConfig } from '@moat/policy';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { DEFAULT_CONFIG } from './default-config.js';

export type LoadResult =
  | { ok: true; config: Readonly<MoatConfig>; source: string }
  | { ok: false; errors: ConfigError[] };

export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv): LoadResult {
  let document: unknown;
  const source = file ?? '(embedded default config)';
  if (file === undefined) {
    document = structuredClone(DEFAULT_CONFIG);
  } else {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      return { ok: false, errors: [{ path: file, message: `cannot be read: ${(err as Error).message}` }] };
    }
    try {
      document = parseYaml(text, { uniqueKeys: true, prettyErrors: true }) ?? {};
    } catch (err) {
      if (err instanceof YAMLParseError) {
        const where = err.linePos?.[0] ? `${file}:${err.linePos[0].line}:${err.linePos[0].col}` : file;
        return { ok: false, errors: [{ path: where, message: err.message.split('\n')[0] ?? err.message }] };
      }
      throw err;
    }
  }
  const errors: ConfigError[] = [];
  document = expandEnv(document, env, [], errors);
  applyOverrides(document, env, errors);
  if (errors.length > 0) return { ok: false, errors };
  const result = parseConfig(document);
  if (!result.ok) return result;
  // What the schema cannot know: the files it names. A DKIM key that cannot sign is found now.
  const fileErrors = result.config.filters.dkim ? checkDkimKeys(result.config.filters.dkim) : [];
  if (fileErrors.length > 0)
    return { ok: false, errors: fileErrors.map((e) => ({ path: formatPath(e.path), message: e.message })) };
  return { ok: true, config: result.config, source };
}

const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

function expandEnv(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: PropertyKey[],
  errors: ConfigError[],
): unknown {
  if (typeof value === 'string') {
    return value.replace(REFERENCE, (_all, name: string, fallback: string | undefined) => {
      const found = env[name];
      if (found !== undefined && found !== '') return found;
      if (fallback !== undefined) return fallback;
      errors.push({
        path: formatPath(path),
        message: `refers to \${${name}}, which is not set in the environment`,
      });
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, [...path, i], errors));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, [...path, k], errors)]),
    );
  }
  return value;
}

const squash = (key: string): string => key.replace(/_/g, '').toLowerCase();

const TOP_LEVEL_KEYS = Object.keys(configSchema.shape);

/**
 * MOAT_A__B_C=value sets a.bC (segments match existing keys ignoring case and underscores).
 * Only variables whose first segment is a top-level config key count, so MOAT_ADMIN_TOKEN
 * stays free for ${MOAT_ADMIN_TOKEN} references.
 */
function applyOverrides(document: unknown, env: NodeJS.ProcessEnv, errors: ConfigError[]): void {
  if (document === null || typeof document !== 'object') return;
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('MOAT_') || raw === undefined || name === 'MOAT_CONFIG') continue;
    const segments = name.slice(5).split('__');
    if (!TOP_LEVEL_KEYS.some((k) => squash(k) === squash(segments[0] ?? ''))) continue;
    let node = document as Record<string, unknown>;
    const path: string[] = [];
    for (const [i, segment] of segments.entries()) {
      const existing = Object.keys(node).find((k) => squash(k) === squash(segment));
      const key = existing ?? camel(segment);
      path.push(key);
      if (i === segments.length - 1) {
        try {
          node[key] = parseYaml(raw);
        } catch {
          errors.push({ path: `${name} (${path.join('.')})`, message: 'is not a valid YAML value' });
        }
      } else {
        const child = node[key];
        if (child === null || typeof child !== 'object' || Array.isArray(child)) node[key] = {};
        node = node[key] as Record<string, unknown>;
      }
    }
  }
}

function camel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
