export {
  type ConnectionRole,
  type ConnectionSettings,
  connect,
  redisOptions,
  whenReady,
} from './connection.js';
export { SpoolFullError, SpoolUnavailableError, withDeadline } from './errors.js';
export { assertNoEviction, MemoryGuard, type MemoryInfo, memoryInfo } from './health.js';
export { Heartbeat, liveNodes, type NodeInfo } from './heartbeat.js';
export { messageIdTime, newMessageId } from './ids.js';
export { type Keys, keysFor } from './keys.js';
export { allRouteStatus, pauseRoute, type RouteStatus, resumeRoute, routeStatus } from './routes.js';
export { type EnqueueInput, Spool, type SpoolOptions } from './spool.js';
export { type SweepResult, sweepOrphans } from './sweeper.js';
export { DEFAULT_MAX_EVENTS, type EventQuery, searchEvents } from './tracking.js';
export type { ClientFacts, DeliveryJob, MessageMeta, TrackingEvent, TrackingEventType } from './types.js';
export { type DeliveryJobHandle, deferJob, type RouteWorkerOptions, startRouteWorker } from './workers.js';
