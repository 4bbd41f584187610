/**
 * The edge's session checks, from the config: DNS lists at connect (refused at RCPT by default,
 * as Postfix's smtpd_delay_reject, or at connect), rate limits at connect, MAIL and RCPT shared
 * by every edge through Redis, recipient validation of inbound domains at RCPT, greylisting
 * last. Allow-listed clients and authenticated users are never refused by a list or greylisted.
 * A Redis failure rejects (the edge answers 451); a DNS list that does not answer is skipped.
 */
import type { CheckRefusal, SessionChecker, SessionChecks, SessionInfo, TransactionInfo } from '@moat/edge';
import {
  dnsblRefusal,
  greylisted,
  greylistTriplet,
  ipInAny,
  type LimitName,
  type MoatConfig,
  parseCidr,
  type Rate,
  rateLimited,
} from '@moat/policy';
import type { Greylist, RateLimits } from '@moat/spool';
import type { DnsblChecker, DnsblResult } from './dnsbl-lookup.js';
import type { RecipientValidator } from './recipient-validation.js';

export interface CheckerParts {
  readonly config: Readonly<MoatConfig>;
  readonly dnsbl: DnsblChecker | null;
  readonly limits: RateLimits;
  readonly greylist: Greylist;
  readonly recipients: RecipientValidator | null;
  /** DNS list outcomes: listed, clean, skipped (a site did not answer in time). */
  readonly onDnsbl?: (clientIp: string, result: DnsblResult) => void;
  /** Remote recipient sources that could not answer. */
  readonly onRecipientError?: (address: string, errors: readonly string[]) => void;
}

/** Whether any check is configured at all (none: the edge opens nothing per session). */
export function hasSessionChecks(config: Readonly<MoatConfig>): boolean {
  const l = config.limits;
  return (
    config.dnsbl.sites.length > 0 ||
    Object.keys(config.recipients.domains).length > 0 ||
    config.greylisting.enabled ||
    [
      l.client.connections,
      l.client.messages,
      l.user.messages,
      l.user.recipients,
      l.senderDomain.messages,
    ].some((r) => r !== null)
  );
}

export function sessionChecker(parts: CheckerParts): SessionChecker {
  const { config, limits } = parts;
  const exemptNetworks = config.limits.exempt.clients.flatMap((c) => {
    const r = parseCidr(c);
    return r.ok ? [r.value] : [];
  });
  const exemptUsers = new Set(config.limits.exempt.users);
  const limit = async (
    name: LimitName,
    rate: Rate | null,
    key: string,
    points = 1,
  ): Promise<CheckRefusal | null> => {
    if (rate === null || (await limits.consume(name, key, rate, points))) return null;
    return { reply: rateLimited(name, rate), reason: `rate:${name}`, detail: key };
  };
  const times = {
    delay: config.greylisting.delay,
    retryWindow: config.greylisting.retryWindow,
    passLifetime: config.greylisting.passLifetime,
  };

  return {
    open(session: SessionInfo): SessionChecks {
      const exemptClient = ipInAny(session.clientIp, exemptNetworks);
      // Started at connect, awaited when it decides (at connect or at the first RCPT).
      let listing: Promise<DnsblResult | null> | null = null;
      const dnsblVerdict = async (): Promise<CheckRefusal | null> => {
        const result = await listing;
        if (result?.listed !== true) return null;
        return {
          reply: dnsblRefusal(session.clientIp, result.score.listedBy),
          reason: 'dnsbl',
          detail: result.score.listedBy.map((s) => s.zone).join(','),
        };
      };
      return {
        async connect() {
          if (parts.dnsbl?.enabled && !session.allowListed) {
            listing = parts.dnsbl.check(session.clientIp).then(
              (result) => {
                parts.onDnsbl?.(session.clientIp, result);
                return result;
              },
              () => null,
            );
            if (config.dnsbl.rejectAt === 'connect') {
              const refused = await dnsblVerdict();
              if (refused) return refused;
            }
          }
          if (exemptClient) return null;
          return limit('client-connections', config.limits.client.connections, session.clientIp);
        },

        async mail(txn: TransactionInfo) {
          if (!exemptClient) {
            const refused = await limit('client-messages', config.limits.client.messages, session.clientIp);
            if (refused) return refused;
          }
          if (txn.user !== null && !exemptUsers.has(txn.user)) {
            const refused = await limit('user-messages', config.limits.user.messages, txn.user);
            if (refused) return refused;
          }
          if (
            txn.trusted &&
            txn.sender !== '' &&
            !exemptClient &&
            !(txn.user !== null && exemptUsers.has(txn.user))
          ) {
            const domain = txn.sender.slice(txn.sender.lastIndexOf('@') + 1).toLowerCase();
            return limit('sender-domain-messages', config.limits.senderDomain.messages, domain);
          }
          return null;
        },

        async rcpt(txn, recipient) {
          // Authenticated users and allow-listed clients are never refused by a list.
          if (!txn.trusted) {
            const refused = await dnsblVerdict();
            if (refused) return refused;
          }
          if (recipient.direction === 'inbound' && parts.recipients) {
            const check = await parts.recipients.check(recipient.address);
            if (check && check.errors.length > 0) parts.onRecipientError?.(recipient.address, check.errors);
            if (check && check.action !== 'accept' && check.reply)
              return {
                reply: check.reply,
                reason: check.action === 'reject' ? 'recipient-unknown' : 'recipient-unverified',
                detail: check.errors.join('; ') || check.source,
              };
          }
          if (txn.user !== null && !exemptUsers.has(txn.user)) {
            const refused = await limit('user-recipients', config.limits.user.recipients, txn.user);
            if (refused) return refused;
          }
          if (config.greylisting.enabled && !txn.trusted) {
            const triplet = greylistTriplet(
              session.clientIp,
              txn.sender,
              recipient.address,
              config.greylisting,
            );
            const wait = await parts.greylist.check(triplet, times);
            if (wait > 0) return { reply: greylisted(wait), reason: 'greylisted', detail: triplet };
          }
          return null;
        },

        close() {
          listing = null;
        },
      };
    },
  };
}
