/**
 * What happens after a delivery attempt: the verdict for one remote reply (data-driven rules,
 * as zone-mta keeps them), and when to try again, or when to give up (queue lifetime).
 */

export type Outcome = 'delivered' | 'deferred' | 'failed';

export interface RemoteReply {
  /** Basic code; 0 when no reply came (connection refused, timeout, DNS failure). */
  readonly code: number;
  readonly text: string;
}

export interface ReplyRule {
  readonly when: (reply: RemoteReply) => boolean;
  readonly outcome: Outcome;
  readonly category: string;
}

/**
 * Rules checked in order; the first that matches decides. Replies no rule names fall back
 * to their class: 2xx delivered, 4xx (and no reply at all) deferred, 5xx failed.
 */
export const REPLY_RULES: readonly ReplyRule[] = [
  // RFC 5321 §4.5.3.1.10: 552 for "too many recipients" must be treated as 452 (try the rest later).
  {
    when: (r) => r.code === 552 && /too many recipients|5\.5\.3/i.test(r.text),
    outcome: 'deferred',
    category: 'too-many-recipients',
  },
  // Greylisting announced with a 5xx by broken servers still means "come back later".
  { when: (r) => r.code >= 500 && /greylist/i.test(r.text), outcome: 'deferred', category: 'greylisted' },
  { when: (r) => r.code === 0, outcome: 'deferred', category: 'network' },
  { when: (r) => r.code >= 200 && r.code < 300, outcome: 'delivered', category: 'ok' },
  { when: (r) => r.code >= 400 && r.code < 500, outcome: 'deferred', category: 'temporary' },
  { when: (r) => r.code >= 500 && r.code < 600, outcome: 'failed', category: 'permanent' },
];

export function classifyReply(reply: RemoteReply): { outcome: Outcome; category: string } {
  for (const rule of REPLY_RULES) {
    if (rule.when(reply)) return { outcome: rule.outcome, category: rule.category };
  }
  return { outcome: 'deferred', category: 'unknown' };
}

export type RetryDecision = { action: 'retry'; delayMs: number } | { action: 'expire' };

export interface RetryInput {
  /** Attempts made so far, including the one that just failed (1 after the first attempt). */
  readonly attemptsMade: number;
  /** When the message was accepted (ms since epoch). */
  readonly queuedAt: number;
  readonly now: number;
  /** Delays before each retry; the last one repeats. */
  readonly schedule: readonly number[];
  readonly lifetime: number;
}

/**
 * After a deferred attempt: retry after the schedule's delay, but never past the end of the
 * queue lifetime (so the last attempt happens right at expiry); once the lifetime has
 * passed, expire, and the pending recipients bounce.
 */
export function nextRetry(input: RetryInput): RetryDecision {
  const { attemptsMade, queuedAt, now, schedule, lifetime } = input;
  const expiresAt = queuedAt + lifetime;
  if (now >= expiresAt) return { action: 'expire' };
  const index = Math.min(Math.max(attemptsMade - 1, 0), schedule.length - 1);
  const delay = schedule[index] ?? 0;
  return { action: 'retry', delayMs: Math.max(0, Math.min(delay, expiresAt - now)) };
}

/** Whether a delay warning is due: the message has waited `after` ms and none was sent yet. */
export function delayWarningDue(
  queuedAt: number,
  now: number,
  after: number | null,
  alreadySent: boolean,
): boolean {
  return after !== null && !alreadySent && now - queuedAt >= after;
}
