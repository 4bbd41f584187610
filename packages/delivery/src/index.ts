// @moat/delivery: the worker pool that takes jobs from the route queues and delivers them.
export { type AttemptContext, attemptDelivery, type RecipientResult } from './attempt.js';
export { BODY_TTL_MS, BodyCache, type BodyCacheOptions, bodyCacheFor } from './body-cache.js';
export { type BounceContext, operatorBounce, type Report, routeForSender, sendReport } from './bounces.js';
export { type Candidates, describeTarget, findTargets, type Target } from './destinations.js';
export {
  type AddressAnswer,
  type DnsFailure,
  DnsResolver,
  type DnsSettings,
  type MxAnswer,
  type MxHost,
  orderMx,
} from './dns-resolver.js';
export { ConnectionPool, HostBusy, type PoolOptions } from './pool.js';
export { makeProcessor, type Processor, type ProcessorContext, type RetrySettings } from './processor.js';
export { type DeliveryOptions, type DeliveryService, routeFor, startDelivery } from './service.js';
export {
  HostFailure,
  type RecipientReply,
  type SessionSettings,
  type SmtpReply,
  SmtpSession,
  type TlsOutcome,
} from './smtp-session.js';
