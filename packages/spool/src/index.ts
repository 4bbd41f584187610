export {
  type ConnectionRole,
  type ConnectionSettings,
  clusterOptions,
  clusterSeeds,
  connect,
  isClusterUrl,
  primariesOf,
  primaryForSlot,
  type RedisClient,
  redisOptions,
  whenReady,
} from './connection.js';
export {
  type CounterName,
  Counters,
  type HistogramName,
  type Labels,
  METRICS,
  readCounters,
  type Sample,
} from './counters.js';
export { SpoolFullError, SpoolUnavailableError, withDeadline } from './errors.js';
export { Greylist, type GreylistTimes } from './greylist.js';
export { assertNoEviction, MemoryGuard, type MemoryInfo, memoryInfo } from './health.js';
export { Heartbeat, liveNodes, type NodeInfo } from './heartbeat.js';
export { messageIdTime, newMessageId, partitionOfId } from './ids.js';
export {
  DELAYED_SCORE_SCALE,
  type Keys,
  keysFor,
  MAX_PARTITIONS,
  type PartitionKeys,
  partitionKeys,
  partitionTag,
  slotOf,
} from './keys.js';
export { lazyChild } from './lazy-log.js';
export {
  OLDEST_SCAN,
  oldestByRoute,
  type PartitionFigures,
  partitionFigures,
  type RouteFigures,
  routeFigures,
} from './metrics-data.js';
export { processStats } from './node-stats.js';
export {
  type ActionOptions,
  type ActionResult,
  actOnJob,
  actOnMessage,
  type BounceHook,
  QUEUE_ACTIONS,
  type QueueAction,
} from './queue-actions.js';
export {
  type BulkResult,
  bulkAction,
  DEFAULT_BULK_STATES,
  type JobFilter,
  MAX_BULK,
  selectJobs,
} from './queue-bulk.js';
export {
  HELD_AFTER_MS,
  HOLD_MS,
  type HoldInfo,
  isHeld,
  QUEUE_STATES,
  type QueuedJob,
  QueueOpError,
  type QueueState,
} from './queue-jobs.js';
export {
  type JobPage,
  type ListQuery,
  listJobs,
  listPartitionJobs,
  MAX_MERGED,
  MAX_PAGE,
  OLDEST_JOBS_SCAN,
  oldestJobs,
} from './queue-list.js';
export {
  HEADER_BYTES,
  type MessageDetails,
  type MessageHeader,
  type MessageJob,
  messageDetails,
  parseHeaders,
} from './queue-message.js';
export { RateLimits } from './rate-limits.js';
export { type CachedRecipient, type CachedRecipientEntry, RecipientCache } from './recipient-cache.js';
export { type ReplicaEvents, ReplicaWatch } from './replicas.js';
export {
  allRouteStatus,
  followPause,
  pauseRoute,
  type RouteStatus,
  resumeRoute,
  routeStatus,
} from './routes.js';
export {
  BULLMQ_EVENTS_MAX,
  type EnqueueInput,
  messageIdOfJob,
  Spool,
  type SpoolOptions,
  spoolFromConfig,
} from './spool.js';
export { type SweepResult, sweepOrphans } from './sweeper.js';
export { DEFAULT_MAX_EVENTS, type EventQuery, searchEvents, searchMessageEvents } from './tracking.js';
export type {
  ClientFacts,
  DeliveryJob,
  FilterVerdictRecord,
  MessageMeta,
  TrackingEvent,
  TrackingEventType,
} from './types.js';
export { type DeliveryJobHandle, deferJob, type RouteWorkerOptions, startRouteWorker } from './workers.js';
