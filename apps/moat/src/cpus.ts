/**
 * How many CPUs this process may really use: os.availableParallelism() counts the CPUs it may
 * run on (affinity), not a container's CPU quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`),
 * so a container limited to one CPU on a 16-CPU host would be told 16.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';

/** CPUs allowed by a cgroup v2 `cpu.max` ("max 100000" or "150000 100000"); null: no limit. */
export function cpusFromCpuMax(text: string): number | null {
  const [quota, period] = text.trim().split(/\s+/);
  return quotaOverPeriod(quota, period);
}

/** CPUs allowed by cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` (quota -1: no limit). */
export function cpusFromCfs(quota: string, period: string): number | null {
  return quotaOverPeriod(quota.trim(), period.trim());
}

function quotaOverPeriod(quota: string | undefined, period: string | undefined): number | null {
  const q = Number(quota);
  const p = Number(period);
  if (!Number.isFinite(q) || !Number.isFinite(p) || q <= 0 || p <= 0) return null;
  return q / p;
}

/**
 * The tightest CPU quota on the way from this process's cgroup up to the root, under `root`
 * (the cgroup file system's mount point), or null when none is set or it cannot be read.
 * `procSelfCgroup` is the text of /proc/self/cgroup.
 */
export function cgroupCpuLimit(procSelfCgroup: string, root = '/sys/fs/cgroup'): number | null {
  const limits: number[] = [];
  for (const line of procSelfCgroup.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (controllers === undefined || path === undefined) continue;
    if (controllers === '') {
      // cgroup v2: one hierarchy, cpu.max in each directory on the way up.
      for (const dir of ancestors(path)) {
        const text = read(join(root, dir, 'cpu.max'));
        const cpus = text === null ? null : cpusFromCpuMax(text);
        if (cpus !== null) limits.push(cpus);
      }
    } else if (controllers.split(',').includes('cpu')) {
      // cgroup v1: the cpu controller's own mount (named "cpu" or "cpu,cpuacct").
      for (const mount of new Set(['cpu', controllers, 'cpu,cpuacct'])) {
        for (const dir of ancestors(path)) {
          const quota = read(join(root, mount, dir, 'cpu.cfs_quota_us'));
          const period = read(join(root, mount, dir, 'cpu.cfs_period_us'));
          const cpus = quota === null || period === null ? null : cpusFromCfs(quota, period);
          if (cpus !== null) limits.push(cpus);
        }
      }
    }
  }
  return limits.length === 0 ? null : Math.min(...limits);
}

/** CPUs this process can use: the affinity count, capped by a cgroup CPU quota. */
export function usableCpus(): number {
  const affinity = availableParallelism();
  const text = read('/proc/self/cgroup');
  const quota = text === null ? null : cgroupCpuLimit(text);
  return quota === null ? affinity : Math.min(affinity, quota);
}

/** "/a/b" → ["/a/b", "/a", "/"]. */
function ancestors(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  return parts.map((_, i) => `/${parts.slice(0, parts.length - i).join('/')}`).concat('/');
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}
