// @moat/filters: the content filters the edge runs before it queues a message (ClamAV,
// Rspamd, SpamAssassin, SPF/DKIM/DMARC/ARC with mailauth) and DKIM signing of outbound mail,
// each a client of the real daemon or library; decisions are the policy core's.

export {
  type AuthenticationEnvelope,
  authenticateSender,
  type LookupFunction,
  lookupThrough,
} from './authentication.js';
export { parseClamdReply, pingClamd, scanWithClamd } from './clamd.js';
export { DaemonError } from './daemon-socket.js';
export { checkDkimKeys, DkimSigner, fromDomain, loadDkimKey } from './dkim-signer.js';
export { DnsblChecker, type DnsblResult } from './dnsbl-lookup.js';
export { type BuildOptions, type BuiltFilters, buildFilters, type FilterProbe } from './from-config.js';
export { FilterMonitor, type MonitorEvents } from './monitor.js';
export { type RecipientCheck, RecipientValidator, type ValidationOptions } from './recipient-validation.js';
export { checkWithRspamd, parseRspamdReply, pingRspamd, type RspamdEnvelope } from './rspamd.js';
export { type CheckerParts, hasSessionChecks, sessionChecker } from './session-checker.js';
export { checkWithSpamd, parseSpamdReply, pingSpamd } from './spamd.js';
export { type ReloadEvent, StaticRecipients } from './static-recipients.js';
