/**
 * `moat policy test --ip IP [--helo NAME] [--from ADDR] --to ADDR[,ADDR] [--auth USER]`: what
 * Moat would answer at each phase of such a session, and why (route, relay decision, DNS
 * lists, rate limits, recipient validation, greylisting, the filters that would see the
 * message), without sending mail and without counting anything: rate limits and greylisting
 * are read, not consumed, and recipient answers are not cached. As Exchange's Test-Mailflow or
 * Postfix's `postmap -q`, to check a change before making it.
 */
import { DnsblChecker, RecipientValidator } from '@moat/filters';
import {
  addressEncodingError,
  compileRelayPolicy,
  decideRecipient,
  dnsblRefusal,
  findInbound,
  formatNextHop,
  formatRate,
  greylistTriplet,
  ipInAny,
  isAddressError,
  isTrusted,
  isValidHelo,
  type LimitName,
  type MoatConfig,
  parseCidr,
  parseSender,
  type Rate,
  Replies,
  type Reply,
  rateLimited,
  replyText,
} from '@moat/policy';
import {
  connect,
  Greylist,
  keysFor,
  RateLimits,
  RecipientCache,
  type RedisClient,
  whenReady,
} from '@moat/spool';
import { loadConfig } from '../config-load.js';
import type { Io } from '../io.js';
import { EXIT_CONFIG, reportConfigErrors } from '../report.js';
import type { Flags } from './admin-http.js';

interface Step {
  readonly phase: 'connect' | 'helo' | 'mail' | 'rcpt' | 'data';
  readonly subject: string;
  /** What Moat would answer ("250", "550 5.7.1 …"), or a note for data. */
  readonly answer: string;
  readonly why: readonly string[];
}

const wire = (r: Reply) => `${r.code} ${replyText(r)}`;

export async function policyTest(flags: Flags, configFile: string | undefined, io: Io): Promise<number> {
  const str = (name: string) => (typeof flags[name] === 'string' ? (flags[name] as string) : undefined);
  const ip = str('ip');
  const to = (str('to') ?? '').split(',').filter(Boolean);
  if (!ip || to.length === 0) {
    io.err('moat: policy test needs --ip IP and --to ADDR[,ADDR] (and --from, --helo, --auth USER)\n');
    return EXIT_CONFIG;
  }
  const loaded = loadConfig(configFile, io.env);
  if (!loaded.ok) return reportConfigErrors(loaded.errors, io);
  const config = loaded.config;
  const redis = await sharedRedis(config);
  try {
    const steps = await walk(config, redis, {
      ip,
      helo: str('helo') ?? 'client.test',
      from: str('from') ?? '',
      to,
      user: str('auth') ?? null,
    });
    io.out(flags.json ? `${JSON.stringify({ steps }, null, 2)}\n` : format(steps));
    return 0;
  } finally {
    redis?.disconnect();
  }
}

/** The installation's Redis (counters, cache, greylisting); null for the embedded private one. */
async function sharedRedis(config: Readonly<MoatConfig>): Promise<RedisClient | null> {
  if (config.redis.url === null) return null;
  const redis = connect({ url: config.redis.url, commandTimeout: config.redis.timeout }, 'producer');
  try {
    await whenReady(redis, 5000);
    return redis;
  } catch {
    redis.disconnect();
    return null;
  }
}

async function walk(
  config: Readonly<MoatConfig>,
  redis: RedisClient | null,
  s: { ip: string; helo: string; from: string; to: readonly string[]; user: string | null },
): Promise<Step[]> {
  const policy = compileRelayPolicy(config);
  const keys = keysFor(config.redis.prefix, config.redis.partitions);
  const limits = redis ? new RateLimits(redis, keys) : null;
  const noRedis = 'rate limits not read: no shared Redis (redis.url is null)';
  const trusted = isTrusted(policy, { clientIp: s.ip, user: s.user });
  const allowListed = isTrusted(policy, { clientIp: s.ip, user: null });
  const steps: Step[] = [];

  // A limit as it stands: over it, the reply; under it, how much is used.
  const limit = async (
    name: LimitName,
    rate: Rate | null,
    key: string,
    why: string[],
  ): Promise<Reply | null> => {
    if (rate === null) return null;
    if (!limits) {
      if (!why.includes(noRedis)) why.push(noRedis);
      return null;
    }
    const used = await limits.used(name, key, rate);
    why.push(`${name} ${key}: ${used} of ${formatRate(rate)} used`);
    return used >= rate.count ? rateLimited(name, rate) : null;
  };
  const exemptClient = ipInAny(
    s.ip,
    config.limits.exempt.clients.flatMap((c) => {
      const r = parseCidr(c);
      return r.ok ? [r.value] : [];
    }),
  );

  // connect
  const why: string[] = [trusted ? 'trusted: may relay (outbound)' : 'not trusted: inbound mail only'];
  let listedBy: Reply | null = null;
  if (config.dnsbl.sites.length > 0 && !allowListed) {
    const result = await new DnsblChecker(config.dnsbl, config.dns.servers).check(s.ip);
    why.push(
      `dnsbl score ${result.score.score} (threshold ${config.dnsbl.threshold})${result.score.listedBy.length ? `: listed by ${result.score.listedBy.map((x) => x.text).join(', ')}` : ''}${result.score.unanswered.length ? `; no answer from ${result.score.unanswered.map((x) => x.zone).join(', ')}` : ''}`,
    );
    if (result.listed) listedBy = dnsblRefusal(s.ip, result.score.listedBy);
  }
  const connRefusal = exemptClient
    ? null
    : await limit('client-connections', config.limits.client.connections, s.ip, why);
  const atConnect = connRefusal ?? (listedBy && config.dnsbl.rejectAt === 'connect' ? listedBy : null);
  steps.push({ phase: 'connect', subject: s.ip, answer: atConnect ? wire(atConnect) : '220', why });
  if (atConnect) return steps;

  // helo
  const heloOk = isValidHelo(s.helo);
  const heloRefused = !heloOk && config.smtp.rejectInvalidHelo;
  steps.push({
    phase: 'helo',
    subject: s.helo,
    answer: '250',
    why: [
      heloOk
        ? 'a valid name'
        : `not a valid name: ${heloRefused ? 'MAIL is refused (smtp.rejectInvalidHelo)' : 'logged only'}`,
    ],
  });

  // mail
  const mailWhy: string[] = [];
  let mailReply: Reply | null = addressEncodingError(s.from, true, 'sender');
  const sender = parseSender(s.from);
  if (!mailReply && isAddressError(sender)) mailReply = Replies.badSenderSyntax;
  if (!mailReply && heloRefused)
    mailReply = {
      code: 501,
      enhanced: '5.5.2',
      text: 'Invalid HELO/EHLO name (a host name or an address literal)',
    };
  if (!mailReply && !exemptClient)
    mailReply = await limit('client-messages', config.limits.client.messages, s.ip, mailWhy);
  if (!mailReply && s.user && !config.limits.exempt.users.includes(s.user))
    mailReply = await limit('user-messages', config.limits.user.messages, s.user, mailWhy);
  if (!mailReply && trusted && s.from.includes('@'))
    mailReply = await limit(
      'sender-domain-messages',
      config.limits.senderDomain.messages,
      s.from.slice(s.from.lastIndexOf('@') + 1).toLowerCase(),
      mailWhy,
    );
  steps.push({
    phase: 'mail',
    subject: `<${s.from}>`,
    answer: mailReply ? wire(mailReply) : '250',
    why: mailWhy,
  });
  if (mailReply) return steps;

  // rcpt
  const validator =
    Object.keys(config.recipients.domains).length > 0 && redis
      ? new RecipientValidator(config.recipients, {
          hostname: config.hostname,
          cache: new RecipientCache(redis, keys),
          smartHost: (domain) => findInbound(policy, domain)?.route.hops[0] ?? null,
        })
      : null;
  try {
    for (const address of s.to) {
      const rcptWhy: string[] = [];
      let reply: Reply | null = addressEncodingError(address, true, 'recipient');
      const verdict = reply ? null : decideRecipient(policy, { clientIp: s.ip, user: s.user }, address);
      if (verdict?.action === 'reject') {
        reply = verdict.reply;
        rcptWhy.push(`relay: ${verdict.reason}${verdict.detail ? ` (${verdict.detail})` : ''}`);
      } else if (verdict) {
        rcptWhy.push(
          `${verdict.direction}: route ${verdict.route.hops.length ? verdict.route.hops.map(formatNextHop).join(', ') : 'MX of the recipient domain'}`,
        );
        if (!trusted && listedBy) reply = listedBy;
        if (
          !redis &&
          verdict.direction === 'inbound' &&
          verdict.recipient.domain in config.recipients.domains
        )
          rcptWhy.push('recipient validation not run: no shared Redis (redis.url is null)');
        if (!reply && verdict.direction === 'inbound' && validator?.validates(verdict.recipient.domain)) {
          const check = await validator
            .check(verdict.recipient.address, { dryRun: true })
            .catch((err: Error) => {
              rcptWhy.push(`recipient validation failed: ${err.message}`);
              return null;
            });
          if (check) {
            rcptWhy.push(
              `recipient ${check.action === 'accept' ? 'known' : check.action === 'reject' ? 'unknown' : 'not verified'} (${check.source}${check.errors.length ? `; ${check.errors.join('; ')}` : ''})`,
            );
            if (check.action !== 'accept' && check.reply) reply = check.reply;
          }
        }
        if (!reply && s.user && !config.limits.exempt.users.includes(s.user))
          reply = await limit('user-recipients', config.limits.user.recipients, s.user, rcptWhy);
        if (!reply && config.greylisting.enabled && !trusted) {
          if (!redis) rcptWhy.push('greylisting not read: no shared Redis');
          else {
            const g = config.greylisting;
            const state = await new Greylist(redis, keys).peek(
              greylistTriplet(s.ip, s.from, verdict.recipient.address, g),
              {
                delay: g.delay,
                retryWindow: g.retryWindow,
                passLifetime: g.passLifetime,
              },
            );
            rcptWhy.push(
              `greylisting: ${state === 'pass' ? 'passes' : state === 'unknown' ? 'first try' : `retry in ${Math.ceil(state / 1000)} s`}`,
            );
            if (state !== 'pass')
              reply = { code: 450, enhanced: '4.7.1', text: 'Greylisted, please try again later' };
          }
        }
      }
      steps.push({
        phase: 'rcpt',
        subject: `<${address}>`,
        answer: reply ? wire(reply) : '250',
        why: rcptWhy,
      });
    }
  } finally {
    await validator?.close();
  }

  // data: which filters the message would meet (their verdicts need the message itself).
  const direction = trusted ? 'outbound' : 'inbound';
  const f = config.filters;
  const filters = [
    f.clamav && f.clamav.action[direction] !== 'off' ? 'clamav' : null,
    f.rspamd && f.rspamd.action[direction] !== 'off' ? 'rspamd' : null,
    f.spamassassin && f.spamassassin.action[direction] !== 'off' ? 'spamassassin' : null,
    f.authentication && direction === 'inbound' ? 'authentication (SPF, DKIM, DMARC, ARC)' : null,
    f.dkim && direction === 'outbound' ? 'DKIM signing' : null,
  ].filter((x): x is string => x !== null);
  steps.push({
    phase: 'data',
    subject: direction,
    answer: filters.length ? `after DATA: ${filters.join(', ')}` : 'no filters',
    why: [],
  });
  return steps;
}

function format(steps: readonly Step[]): string {
  return steps
    .map(
      (st) =>
        `${st.phase.padEnd(8)}${st.subject.padEnd(30)} ${st.answer}${st.why.map((w) => `\n${''.padEnd(39)}${w}`).join('')}\n`,
    )
    .join('');
}
