/**
 * V8 garbage-collector settings for a relay, set before anything else is loaded (main.ts
 * imports this first). V8 flags are process-wide: the delivery thread has them too.
 *
 * A relayed message is a few large Buffers (the socket's reads, the body, the Redis command
 * that writes it), whose memory lives outside V8's heap. By default V8 starts a full
 * mark-compact of the whole heap each time that outside memory has grown by a fixed step, so
 * at 1 MB messages the edge and the worker spent about as much CPU in V8's marking threads as
 * in their own code (perf, docs/benchmarks.md). Accounting that memory in V8's global limit
 * instead lets the short-lived buffers go with the cheap young-generation collections.
 */
import v8 from 'node:v8';

export const GC_FLAGS = ['--external-memory-accounted-in-global-limit'] as const;

// MOAT_V8_STOCK_GC=1 keeps V8's defaults: to compare the two (scripts/bench.sh --node).
if (process.env.MOAT_V8_STOCK_GC !== '1') for (const flag of GC_FLAGS) v8.setFlagsFromString(flag);
