export { describeTrick, TRICKS, type Trick } from './address-tricks.js';
export {
  ADDRESS_LIMITS,
  type AddressError,
  type AddressErrorCode,
  formatLocalPart,
  isAddressError,
  isNullSender,
  type NullSender,
  type ParsedAddress,
  parseAddress,
  parseSender,
} from './addresses.js';
export { type Cidr, ipInAny, isIp, isLoopback, parseCidr } from './cidr.js';
export { type ConfigError, type ConfigResult, formatPath, maskSecrets, parseConfig } from './config.js';
export {
  type AuthenticationConfig,
  type ClamavConfig,
  type DaemonAddress,
  DEFAULT_DKIM_HEADERS,
  type DkimConfig,
  FILTER_ACTIONS,
  type FilterAction,
  type FiltersConfig,
  type RspamdConfig,
  type SpamassassinConfig,
} from './config-filters.js';
export { changesNeedingRestart, LIVE_KEYS } from './config-reload.js';
export { configSchema, MAX_PARTITIONS, type MoatConfig, type MoatConfigInput } from './config-schema.js';
export type {
  DnsblConfig,
  GreylistingConfig,
  LdapSourceConfig,
  LimitsConfig,
  RecipientSource,
  RecipientsConfig,
} from './config-sessions.js';
export type { RouteConfig } from './config-types.js';
export {
  answerMatches,
  type DnsblAnswers,
  type DnsblScore,
  type DnsblSite,
  dnsblQueryName,
  parseDnsblSite,
  scoreDnsbl,
} from './dnsbl.js';
export { type DomainPattern, domainMatches, normalizeDomain, parseDomainPattern } from './domains.js';
export {
  composeDsn,
  type DsnAction,
  type DsnDiagnostic,
  type DsnInput,
  type DsnRecipient,
  enhancedStatus,
  headerSection,
} from './dsn.js';
export {
  type AuthenticationResult,
  type ClamavResult,
  combineDecisions,
  type DecisionAction,
  type Direction,
  decideAuthentication,
  decideClamav,
  decideError,
  decideRspamd,
  decideSpamassassin,
  type FilterDecision,
  type RspamdAction,
  type RspamdResult,
  type SpamassassinResult,
} from './filter-decisions.js';
export { selectPartitions } from './partitions.js';
export { composeReceived, type ReceivedInput, rfc5322Date, withProtocol } from './received.js';
export {
  compileRelayPolicy,
  decideRecipient,
  findInbound,
  groupByRoute,
  type InboundDomain,
  isTrusted,
  type RelayContext,
  type RelayPolicy,
  type RouteGroup,
  routeConflicts,
  type Verdict,
} from './relay.js';
export {
  openRelayProbes,
  type ProbeResult,
  type RelayProbe,
  runRelayProbes,
  UNTRUSTED_PROBE_IP,
} from './relay-probes.js';
export {
  isPermanent,
  isTransient,
  queued,
  Replies,
  type Reply,
  type ReplyName,
  replyText,
  withDetail,
} from './replies.js';
export {
  classifyReply,
  delayWarningDue,
  nextRetry,
  type Outcome,
  REPLY_RULES,
  type RemoteReply,
  type ReplyRule,
  type RetryDecision,
  type RetryInput,
} from './retry.js';
export {
  formatNextHop,
  isHostname,
  MX_ROUTE_ID,
  type NextHop,
  parseDestination,
  parseNextHop,
  type Route,
  routeIdOf,
  type TlsMode,
} from './routes.js';
export {
  addressEncodingError,
  decideRecipientAnswers,
  dnsblRefusal,
  greylisted,
  greylistTriplet,
  invalidHelo,
  isValidHelo,
  type LimitName,
  type RecipientAnswer,
  type RecipientDecision,
  rateLimited,
  recipientUnknown,
  recipientUnverified,
} from './session-checks.js';
export {
  formatDuration,
  formatRate,
  formatSize,
  type ParseResult,
  parseDuration,
  parseRate,
  parseSize,
  type Rate,
} from './units.js';
