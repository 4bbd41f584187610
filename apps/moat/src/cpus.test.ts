import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { cgroupCpuLimit, cpusFromCfs, cpusFromCpuMax, usableCpus } from './cpus.js';

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** A cgroup file system of the test's own: { "kubepods/pod1/cpu.max": "50000 100000" }. */
function cgroupTree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'moat-cgroup-'));
  roots.push(root);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(root, file, '..'), { recursive: true });
    writeFileSync(join(root, file), `${text}\n`);
  }
  return root;
}

describe('CPU quota', () => {
  test('cgroup v2 cpu.max and v1 cfs values', () => {
    expect(cpusFromCpuMax('max 100000')).toBeNull();
    expect(cpusFromCpuMax('150000 100000')).toBe(1.5);
    expect(cpusFromCpuMax('garbage')).toBeNull();
    expect(cpusFromCfs('-1', '100000')).toBeNull();
    expect(cpusFromCfs('100000', '100000')).toBe(1);
  });

  test('cgroup v2: the tightest limit on the way up to the root', () => {
    const root = cgroupTree({
      'cpu.max': 'max 100000',
      'kubepods/cpu.max': '400000 100000',
      'kubepods/pod1/cpu.max': '50000 100000',
      'kubepods/pod1/app/cpu.max': 'max 100000',
    });
    expect(cgroupCpuLimit('0::/kubepods/pod1/app\n', root)).toBe(0.5);
    expect(cgroupCpuLimit('0::/kubepods\n', root)).toBe(4);
    expect(cgroupCpuLimit('0::/\n', root)).toBeNull();
  });

  test('cgroup v1: the cpu controller mount, whatever it is called', () => {
    const root = cgroupTree({
      'cpu,cpuacct/docker/abc/cpu.cfs_quota_us': '200000',
      'cpu,cpuacct/docker/abc/cpu.cfs_period_us': '100000',
      'cpu,cpuacct/cpu.cfs_quota_us': '-1',
      'cpu,cpuacct/cpu.cfs_period_us': '100000',
    });
    const text = '12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n';
    expect(cgroupCpuLimit(text, root)).toBe(2);
    expect(cgroupCpuLimit('4:cpu,cpuacct:/\n', root)).toBeNull();
  });

  test('no cgroup files to read: no limit', () => {
    const root = cgroupTree({});
    expect(cgroupCpuLimit('0::/user.slice\n4:cpu:/x\n', root)).toBeNull();
  });

  test('on this machine: at most the affinity count, and at least a share of one CPU', () => {
    const cpus = usableCpus();
    expect(cpus).toBeGreaterThan(0);
    expect(cpus).toBeLessThanOrEqual(availableParallelism());
  });
});
