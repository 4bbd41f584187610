/**
 * What Moat does with a scanner's answer: pure functions from a filter's result (data the
 * filter clients in @moat/filters produce) and its config to a decision, and the rule that
 * combines the decisions of filters that ran side by side. No I/O.
 */
import type {
  AuthenticationConfig,
  ClamavConfig,
  FilterAction,
  RspamdConfig,
  SpamassassinConfig,
} from './config-filters.js';
import { Replies, type Reply, withDetail } from './replies.js';

export type Direction = 'inbound' | 'outbound';

/** What happens to the message: the edge carries it out after every filter has answered. */
export type DecisionAction = 'accept' | 'tag' | 'tempfail' | 'reject';

export interface FilterDecision {
  readonly action: DecisionAction;
  /** For tempfail and reject. */
  readonly reply?: Reply;
  /** Why, for the log (a signature name, a score, a policy). */
  readonly reason?: string;
  /** Header fields (each "Name: value\r\n") to prepend, whatever the action. */
  readonly headers: readonly string[];
  /** A tag for the Subject (Rspamd's rewrite subject), applied when the action is tag. */
  readonly subject?: string;
  /**
   * How the verdict is counted and tracked when it is not the action itself: `unscanned` for a
   * message accepted without a scan (larger than the scanner takes), so it is never counted as
   * a clean one.
   */
  readonly verdict?: 'unscanned';
}

export type ClamavResult =
  | { readonly status: 'clean' }
  | { readonly status: 'infected'; readonly signature: string }
  | { readonly status: 'oversize'; readonly size: number };

/** Rspamd's actions (https://rspamd.com/doc/configuration/metrics.html). */
export type RspamdAction =
  | 'no action'
  | 'greylist'
  | 'add header'
  | 'rewrite subject'
  | 'soft reject'
  | 'reject';

export interface RspamdResult {
  readonly action: RspamdAction;
  readonly score: number;
  readonly required: number;
  readonly symbols: readonly string[];
  /** The subject Rspamd proposes for rewrite subject. */
  readonly subject?: string;
}

export interface SpamassassinResult {
  readonly spam: boolean;
  readonly score: number;
  readonly threshold: number;
  readonly symbols: readonly string[];
}

export interface AuthenticationResult {
  readonly spf: string;
  readonly dkim: string;
  readonly dmarc: {
    readonly result: string;
    /** The policy in force for the From domain (p, sp or np, t=y applied). */
    readonly policy?: string;
    readonly domain?: string;
  };
  readonly arc: { readonly result: string; readonly sealer?: string };
  /** The envelope sender's domain, as SPF checked it. */
  readonly spfDomain?: string;
  /** Authentication-Results and Received-SPF, as mailauth composed them. */
  readonly headers: readonly string[];
}

const SEVERITY: Record<DecisionAction, number> = { accept: 0, tag: 1, tempfail: 2, reject: 3 };

/** A flagged message under the configured action (off: as if clean). */
function flagged(
  action: FilterAction,
  reject: Reply,
  reason: string,
  headers: readonly string[],
): FilterDecision {
  switch (action) {
    case 'reject':
      return { action: 'reject', reply: reject, reason, headers };
    case 'tempfail':
      return { action: 'tempfail', reply: Replies.filterDeferred, reason, headers };
    case 'tag':
      return { action: 'tag', reason, headers: [...headers, 'X-Spam-Flag: YES\r\n'] };
    case 'off':
      return { action: 'accept', reason: `${reason} (action off)`, headers };
  }
}

export function decideClamav(
  config: ClamavConfig,
  direction: Direction,
  result: ClamavResult,
): FilterDecision {
  switch (result.status) {
    case 'clean':
      return { action: 'accept', headers: ['X-Virus-Status: Clean\r\n'] };
    case 'infected':
      return flagged(
        config.action[direction],
        withDetail(Replies.virusFound, result.signature),
        `virus ${result.signature}`,
        [`X-Virus-Status: Infected (${headerSafe(result.signature)})\r\n`],
      );
    case 'oversize': {
      const reason = `not scanned: ${result.size} bytes > clamav.maxSize ${config.maxSize}`;
      const headers = [`X-Virus-Status: Not scanned (larger than ${config.maxSize} bytes)\r\n`];
      if (config.oversize === 'reject')
        return { action: 'reject', reply: Replies.tooBigToScan, reason, headers };
      if (config.oversize === 'tempfail')
        return { action: 'tempfail', reply: Replies.scannerUnavailable, reason, headers };
      return { action: 'accept', verdict: 'unscanned', reason, headers };
    }
  }
}

function spamStatus(
  spam: boolean,
  score: number,
  required: number,
  scanner: string,
  symbols: readonly string[],
) {
  const tests = symbols.length > 0 ? ` tests=${symbols.map(headerSafe).join(',')}` : '';
  return [
    `X-Spam-Status: ${spam ? 'Yes' : 'No'}, score=${score.toFixed(2)} required=${required.toFixed(2)} scanner=${scanner}${tests}\r\n`,
    `X-Spam-Score: ${score.toFixed(2)}\r\n`,
  ];
}

export function decideRspamd(
  config: RspamdConfig,
  direction: Direction,
  result: RspamdResult,
): FilterDecision {
  const configured = config.action[direction];
  const reason = `rspamd ${result.action} (score ${result.score.toFixed(2)}/${result.required.toFixed(2)})`;
  switch (result.action) {
    case 'reject':
      return flagged(
        configured,
        Replies.spamRejected,
        reason,
        spamStatus(true, result.score, result.required, 'rspamd', result.symbols),
      );
    case 'soft reject':
      // Rspamd asks for a temporary failure; a tag or off configuration weakens it as for reject.
      return flagged(
        configured === 'reject' ? 'tempfail' : configured,
        Replies.spamRejected,
        reason,
        spamStatus(true, result.score, result.required, 'rspamd', result.symbols),
      );
    case 'add header':
    case 'rewrite subject': {
      const headers = spamStatus(true, result.score, result.required, 'rspamd', result.symbols);
      if (configured === 'off') return { action: 'accept', reason: `${reason} (action off)`, headers };
      return {
        action: 'tag',
        reason,
        headers: [...headers, 'X-Spam-Flag: YES\r\n'],
        ...(result.action === 'rewrite subject' && result.subject ? { subject: result.subject } : {}),
      };
    }
    default:
      // no action, greylist (Moat's own greylisting is configured apart): clean.
      return {
        action: 'accept',
        headers: spamStatus(false, result.score, result.required, 'rspamd', result.symbols),
      };
  }
}

export function decideSpamassassin(
  config: SpamassassinConfig,
  direction: Direction,
  result: SpamassassinResult,
): FilterDecision {
  const headers = spamStatus(result.spam, result.score, result.threshold, 'spamassassin', result.symbols);
  if (!result.spam) return { action: 'accept', headers };
  const reason = `spamassassin score ${result.score.toFixed(2)}/${result.threshold.toFixed(2)}`;
  const configured = config.action[direction];
  // Between spamd's threshold and rejectScore: tagged, not refused.
  const action =
    config.rejectScore !== undefined && result.score < config.rejectScore
      ? tagAtMost(configured)
      : configured;
  return flagged(action, Replies.spamRejected, reason, headers);
}

function tagAtMost(action: FilterAction): FilterAction {
  return action === 'off' ? 'off' : 'tag';
}

export function decideAuthentication(
  config: AuthenticationConfig,
  result: AuthenticationResult,
): FilterDecision {
  const { dmarc, arc } = result;
  const headers = result.headers;
  if (dmarc.result === 'fail' && (dmarc.policy === 'reject' || dmarc.policy === 'quarantine')) {
    const sealer = arc.sealer?.toLowerCase();
    if (arc.result === 'pass' && sealer && config.trustedArcSealers.some((d) => d.toLowerCase() === sealer)) {
      return {
        action: 'accept',
        reason: `dmarc fail overridden by the ARC chain sealed by ${sealer}`,
        headers,
      };
    }
    const reason = `dmarc fail, p=${dmarc.policy} of ${dmarc.domain ?? '?'}`;
    const action = dmarc.policy === 'reject' ? config.dmarcReject : config.dmarcQuarantine;
    return flagged(action, withDetail(Replies.dmarcRejected, dmarc.domain ?? ''), reason, headers);
  }
  const dmarcDecided = dmarc.result === 'pass' || dmarc.result === 'fail';
  if (result.spf === 'fail' && !dmarcDecided) {
    return flagged(
      config.spfFail,
      withDetail(Replies.spfFailed, result.spfDomain ?? ''),
      `spf fail for ${result.spfDomain ?? '?'}`,
      headers,
    );
  }
  return { action: 'accept', headers };
}

/** A filter that could not answer (down, slow, garbage): 451, or accept as configured. */
export function decideError(onError: 'tempfail' | 'accept', filter: string, error: string): FilterDecision {
  const reason = `${filter} failed: ${error}`;
  if (onError === 'accept') return { action: 'accept', reason: `${reason} (onError accept)`, headers: [] };
  return { action: 'tempfail', reply: Replies.scannerUnavailable, reason, headers: [] };
}

/**
 * The message's fate when several filters ran: the most severe decision wins (reject over
 * tempfail over tag over accept; the first filter listed on a tie), and the headers of every
 * filter are kept, in filter order, X-Spam-Flag once.
 */
export function combineDecisions(
  decisions: readonly { readonly filter: string; readonly decision: FilterDecision }[],
): {
  readonly decision: FilterDecision;
  readonly filter: string | null;
} {
  let worst: { filter: string; decision: FilterDecision } | null = null;
  for (const d of decisions) {
    if (worst === null || SEVERITY[d.decision.action] > SEVERITY[worst.decision.action]) worst = d;
  }
  const headers: string[] = [];
  for (const d of decisions) for (const h of d.decision.headers) if (!headers.includes(h)) headers.push(h);
  const subject = decisions.find((d) => d.decision.subject !== undefined)?.decision.subject;
  if (worst === null) return { decision: { action: 'accept', headers }, filter: null };
  return {
    decision: { ...worst.decision, headers, ...(subject !== undefined ? { subject } : {}) },
    filter: worst.decision.action === 'accept' ? null : worst.filter,
  };
}

/** A value from outside as it may stand in a header field body: printable ASCII, one line. */
function headerSafe(text: string): string {
  return text.replace(/[^\x21-\x7e]/g, '_').slice(0, 100);
}
