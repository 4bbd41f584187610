/**
 * The admin API client of the `moat queue|route|track` commands: URL and token from flags or
 * the environment (MOAT_ADMIN_URL, MOAT_ADMIN_TOKEN), JSON in and out, one error type.
 */
import { fileURLToPath } from 'node:url';
import type { Io } from '../io.js';
import { findLocalToken } from '../local-token.js';

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8025';

/** The checkout this command runs from (apps/moat/{src,dist}/commands → the repository root). */
const CHECKOUT = fileURLToPath(new URL('../../../../', import.meta.url));

/** A failure to report: `usage` exits 2, anything else 1. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(message);
  }
}

export type Flags = Record<string, string | boolean | undefined>;

export class AdminClient {
  readonly #base: string;
  readonly #token: string | undefined;

  constructor(flags: Flags, io: Io) {
    const url =
      (typeof flags.url === 'string' ? flags.url : undefined) ?? io.env.MOAT_ADMIN_URL ?? DEFAULT_ADMIN_URL;
    if (!/^https?:\/\/[^/]+/.test(url))
      throw new CommandError(`--url must be an http:// or https:// URL, got "${url}"`, true);
    this.#base = url.replace(/\/+$/, '');
    this.#token =
      (typeof flags.token === 'string' ? flags.token : undefined) ??
      io.env.MOAT_ADMIN_TOKEN ??
      // The local default (scripts/start.sh) keeps its token in .moat/admin-token.
      (this.#base === DEFAULT_ADMIN_URL ? findLocalToken(process.cwd(), CHECKOUT) : undefined);
  }

  get<T>(path: string, query: Record<string, string | number | boolean | undefined> = {}): Promise<T> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return this.request<T>('GET', qs ? `${path}?${qs}` : path);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    if (!this.#token) {
      throw new CommandError(
        'no admin token: pass --token or set MOAT_ADMIN_TOKEN (scripts/start.sh keeps one in .moat/admin-token)',
        true,
      );
    }
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#token}`,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.#base}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(60_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CommandError(
        `cannot reach the admin API at ${this.#base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
      );
    }
    const text = await response.text();
    let data: unknown;
    try {
      data = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new CommandError(`the admin API answered ${response.status} with something that is not JSON`);
    }
    if (!response.ok) {
      const message = (data as { message?: string }).message ?? response.statusText;
      throw new CommandError(`${response.status}: ${message}`);
    }
    return data as T;
  }
}
