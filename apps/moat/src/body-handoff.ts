/**
 * The edge's bodies on their way to this process's own delivery (delivery.bodyCache): the edge
 * role hands over each message once it is durable and the edge is done with it; the worker
 * role, started after it, says where they go: its BodyCache, or its delivery thread. Until
 * then, in a process without a worker, or with the cache off, they go nowhere and delivery
 * reads them from Redis.
 */
import type { QueuedHandler } from '@moat/edge';

export class BodyHandoff {
  #to: QueuedHandler | null = null;

  /** The edge's onQueued (which logs a throw: delivery then reads the body from Redis). */
  readonly queued: QueuedHandler = (messageId, body, movable) => this.#to?.(messageId, body, movable);

  /** Where bodies go from now on (null: nowhere). */
  deliverTo(to: QueuedHandler | null): void {
    this.#to = to;
  }
}
