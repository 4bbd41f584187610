/**
 * Process figures a node puts in its heartbeat (`NodeInfo.stats`), so the admin API can show
 * every node's load and memory, and /metrics can export them per node. A role adds its own
 * figures beside these (the edge: `sessions`; a worker: `activeJobs`).
 */
import { loadavg } from 'node:os';

export function processStats(): Record<string, number> {
  const memory = process.memoryUsage();
  const cpu = process.cpuUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    load1: loadavg()[0] ?? 0,
    uptimeSeconds: Math.round(process.uptime()),
  };
}
