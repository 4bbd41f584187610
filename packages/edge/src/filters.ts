/**
 * The filter hook: content filters (virus and spam scanners, sender authentication) run after
 * DATA, all at once on the one body buffer, each under its own timeout, so a message waits
 * for the slowest scanner, not for the sum. A filter's answer is a decision of the policy
 * core; one that fails or times out is decided by its onError (451 4.7.1 by default), never
 * lost or bounced. The combined decision, the headers to add and remove, and every filter's
 * result (for the tracking record) come back as data.
 */
import { combineDecisions, type Direction, decideError, type FilterDecision } from '@moat/policy';

export interface FilterInput {
  readonly queueId: string;
  readonly direction: Direction;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly clientIp: string;
  readonly helo: string;
  readonly user: string | null;
  /** The message as received, CRLF line endings, before Moat's own header fields. */
  readonly body: Buffer;
}

export interface FilterCheck {
  readonly decision: FilterDecision;
  /** What the filter found, for the tracking record (virus name, score, SPF/DKIM/DMARC). */
  readonly result: Readonly<Record<string, unknown>>;
}

export interface Filter {
  readonly name: string;
  readonly timeoutMs: number;
  readonly onError: 'tempfail' | 'accept';
  /** Whether the filter looks at mail in this direction at all. */
  appliesTo(direction: Direction): boolean;
  /**
   * Header fields from outside that this filter's own fields stand for (a forged
   * Authentication-Results claiming Moat's id, a sender's X-Spam-Status): removed whenever the
   * filter applies, whether it answered or failed open, so a fail-open never lets a forgery by.
   */
  readonly removeHeader?: (name: string, value: string) => boolean;
  /** Aborting the signal (the timeout) must make it give up its connection. */
  check(input: FilterInput, signal: AbortSignal): Promise<FilterCheck>;
}

/** Signs outbound mail as it is queued (DKIM): header fields to prepend, or null (no key). */
export interface Signer {
  readonly onError: 'tempfail' | 'accept';
  sign(message: Buffer): Promise<{ headers: string; domain: string; selectors: readonly string[] } | null>;
}

/** One filter's part in a message's fate, as logged, counted and tracked. */
export interface FilterReport {
  readonly filter: string;
  /** accept, tag, tempfail, reject, error (the filter could not answer), or unscanned (accepted without a scan). */
  readonly verdict: string;
  readonly seconds: number;
  readonly result: Readonly<Record<string, unknown>>;
  readonly reason?: string;
}

export interface FilterOutcome {
  readonly decision: FilterDecision;
  /** The filter whose decision it is (null when every filter accepted). */
  readonly filter: string | null;
  readonly reports: readonly FilterReport[];
  readonly removeHeader: ((name: string, value: string) => boolean) | null;
}

export async function runFilters(filters: readonly Filter[], input: FilterInput): Promise<FilterOutcome> {
  const applicable = filters.filter((f) => f.appliesTo(input.direction));
  const ran = await Promise.all(applicable.map((f) => runOne(f, input)));
  const combined = combineDecisions(ran.map((r) => ({ filter: r.report.filter, decision: r.decision })));
  const removers = applicable.flatMap((f) => (f.removeHeader ? [f.removeHeader] : []));
  return {
    decision: combined.decision,
    filter: combined.filter,
    reports: ran.map((r) => r.report),
    removeHeader:
      removers.length === 0 ? null : (name, value) => removers.some((remove) => remove(name, value)),
  };
}

async function runOne(
  filter: Filter,
  input: FilterInput,
): Promise<{ decision: FilterDecision; report: FilterReport }> {
  const started = performance.now();
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`no answer in ${filter.timeoutMs} ms`)),
    filter.timeoutMs,
  );
  const seconds = () => (performance.now() - started) / 1000;
  try {
    const check = await Promise.race([
      filter.check(input, controller.signal),
      new Promise<never>((_, reject) =>
        controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true }),
      ),
    ]);
    const { decision } = check;
    return {
      decision,
      report: {
        filter: filter.name,
        verdict: decision.verdict ?? decision.action,
        seconds: seconds(),
        result: check.result,
        ...(decision.reason ? { reason: decision.reason } : {}),
      },
    };
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    const decision = decideError(filter.onError, filter.name, message);
    return {
      decision,
      report: {
        filter: filter.name,
        verdict: 'error',
        seconds: seconds(),
        result: { error: message },
        ...(decision.reason ? { reason: decision.reason } : {}),
      },
    };
  } finally {
    // Only the timeout aborts: an abort per finished filter costs a DOMException with a stack.
    clearTimeout(timer);
  }
}
