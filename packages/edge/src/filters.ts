/**
 * Content filters (spam and virus scanners, sender authentication) run after DATA, each under
 * a timeout; a filter that fails or times out defers the message (451 4.7.1), never loses or
 * bounces it. Verdicts are data, so they can be logged and tested.
 */
import { Replies, type Reply } from '@moat/policy';

export interface FilterInput {
  readonly queueId: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly clientIp: string;
  readonly user: string | null;
  readonly body: Buffer;
}

export type FilterVerdict =
  | { readonly action: 'accept'; readonly headers?: readonly string[] }
  | { readonly action: 'reject' | 'defer'; readonly reply: Reply; readonly reason: string };

export interface Filter {
  readonly name: string;
  readonly timeoutMs: number;
  check(input: FilterInput): Promise<FilterVerdict>;
}

export interface FilterOutcome {
  readonly verdict: FilterVerdict;
  /** Headers the filters want prepended (e.g. X-Spam-Status). */
  readonly headers: string[];
  readonly filter?: string;
}

export async function runFilters(filters: readonly Filter[], input: FilterInput): Promise<FilterOutcome> {
  const headers: string[] = [];
  for (const filter of filters) {
    let verdict: FilterVerdict;
    try {
      verdict = await withTimeout(filter.check(input), filter.timeoutMs);
    } catch (err) {
      return {
        verdict: {
          action: 'defer',
          reply: Replies.filterDeferred,
          reason: `${filter.name}: ${(err as Error).message}`,
        },
        headers,
        filter: filter.name,
      };
    }
    if (verdict.action !== 'accept') return { verdict, headers, filter: filter.name };
    if (verdict.headers) headers.push(...verdict.headers);
  }
  return { verdict: { action: 'accept' }, headers };
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
