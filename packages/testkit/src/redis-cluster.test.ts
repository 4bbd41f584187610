import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLUSTER_SLOTS, type ClusterNode, type RedisCluster, startRedisCluster } from './redis-cluster.js';

const KEYS = Array.from({ length: 60 }, (_, i) => `key-${i}`);

let cluster: RedisCluster;
const clients: (Cluster | Redis)[] = [];

/** A new ioredis Cluster client (after a failover a fresh one needs no slot refresh to succeed). */
function clusterClient(): Cluster {
  const client = new Cluster([...cluster.startupNodes], { redisOptions: { connectTimeout: 1000 } });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

function direct(node: ClusterNode): Redis {
  const client = new Redis({ host: node.host, port: node.port, maxRetriesPerRequest: 1 });
  client.on('error', () => {});
  clients.push(client);
  return client;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The last three arguments (test pid, daemon group, dir) of every running `sh -c` watchdog. */
function watchdogArgs(): string[][] {
  const found: string[][] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
    } catch {
      continue;
    }
    if (argv[0] === '/bin/sh' && argv[1] === '-c' && argv[2]?.includes('kill -0')) found.push(argv.slice(-3));
  }
  return found;
}

const slotCount = (node: ClusterNode) => node.slots.reduce((n, [a, b]) => n + b - a + 1, 0);

beforeAll(async () => {
  const started = Date.now();
  cluster = await startRedisCluster({ primaries: 3, replicasPerPrimary: 1, appendfsync: 'always' });
  console.log(`redis cluster: 6 nodes up and agreed in ${Date.now() - started} ms`);
}, 60_000);

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await cluster?.stop();
});

describe('startRedisCluster', () => {
  test('3 primaries share every slot, each with one replica, on loopback ports that are not 6379', async () => {
    expect(cluster.nodes).toHaveLength(6);
    const primaries = await cluster.primaries();
    expect(primaries).toHaveLength(3);
    expect(primaries.reduce((n, p) => n + slotCount(p), 0)).toBe(CLUSTER_SLOTS);
    for (const primary of primaries) {
      const replicas = cluster.replicasOf(primary);
      expect(replicas).toHaveLength(1);
      expect(replicas[0]?.slots).toEqual([]);
    }
    for (const node of cluster.nodes) {
      expect(node.host).toBe('127.0.0.1');
      expect(node.port).not.toBe(6379);
      expect(node.id).toMatch(/^[0-9a-f]{40}$/);
      expect(alive(node.pid)).toBe(true);
    }
    // Each node has a watchdog that ends it if this test process dies (daemon.ts).
    const watchdogs = watchdogArgs();
    for (const node of cluster.nodes) {
      expect(watchdogs, `watchdog of ${node.port}`).toContainEqual([
        String(process.pid),
        String(node.pid),
        node.dir,
      ]);
    }
    expect(cluster.seeds).toBe(cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(','));
    expect(await direct(primaries[0] as ClusterNode).config('GET', 'cluster-node-timeout')).toEqual([
      'cluster-node-timeout',
      '2000',
    ]);
  });

  test('keys written through ioredis Cluster land on every primary', async () => {
    const client = clusterClient();
    for (const key of KEYS) await client.set(key, `value of ${key}`);
    for (const primary of await cluster.primaries()) {
      const held = await direct(primary).dbsize();
      expect(held, `primary ${primary.port}`).toBeGreaterThan(0);
      // Replicated before anything is killed.
      expect(await direct(primary).wait(1, 5000)).toBe(1);
    }
    expect(await client.mget(...KEYS.slice(0, 1))).toEqual(['value of key-0']);
  });

  test('reshard moves slots, and their keys stay readable', async () => {
    const [from, to] = await cluster.primaries();
    if (!from || !to) throw new Error('two primaries expected');
    const before = { from: slotCount(from), to: slotCount(to) };
    await cluster.reshard({ from, to, slots: 200 });
    const after = await cluster.primaries();
    const now = (node: ClusterNode) => slotCount(after.find((p) => p.id === node.id) as ClusterNode);
    expect(now(from)).toBe(before.from - 200);
    expect(now(to)).toBe(before.to + 200);
    const client = clusterClient();
    for (const key of KEYS) expect(await client.get(key)).toBe(`value of ${key}`);
  }, 60_000);

  test('SIGKILL a primary: its replica is promoted, nothing is lost, and it rejoins as a replica', async () => {
    const [victim] = await cluster.primaries();
    if (!victim) throw new Error('no primary');
    const [heir] = cluster.replicasOf(victim);
    if (!heir) throw new Error(`primary ${victim.port} has no replica`);
    const pid = victim.pid;
    const killed = Date.now();
    await cluster.kill(victim);
    expect(alive(pid)).toBe(false);
    expect(victim.running).toBe(false);

    const primaries = await cluster.waitForFailover();
    console.log(
      `redis cluster: replica ${heir.port} took over from ${victim.port} in ${Date.now() - killed} ms`,
    );
    expect(primaries.map((p) => p.port).sort()).toContain(heir.port);
    expect(primaries.map((p) => p.port)).not.toContain(victim.port);
    expect(heir.role).toBe('primary');
    const client = clusterClient();
    for (const key of KEYS) expect(await client.get(key)).toBe(`value of ${key}`);

    await cluster.restart(victim);
    expect(victim.pid).not.toBe(pid);
    expect(victim.role).toBe('replica');
    expect(victim.primaryId).toBe(heir.id);
    expect(await cluster.primaries()).toHaveLength(3);
  }, 60_000);

  test('stop ends every node by PID and removes the directories', async () => {
    const pids = cluster.nodes.map((n) => n.pid);
    const dirs = cluster.nodes.map((n) => n.dir);
    await cluster.stop();
    expect(pids.filter(alive)).toEqual([]);
    expect(dirs.filter((d) => existsSync(d))).toEqual([]);
    await cluster.stop(); // idempotent
    await expect(cluster.restart(cluster.nodes[0] as ClusterNode)).rejects.toThrow(/stopped/);
  });
});
