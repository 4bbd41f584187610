/**
 * A Redis Cluster on 127.0.0.1 for tests: `primaries × (1 + replicasPerPrimary)` redis-server
 * processes with `--cluster-enabled yes`, each with its own directory (AOF, nodes.conf, log) and
 * two free ports (clients, cluster bus), started at once and joined by `redis-cli --cluster
 * create`. Nodes are signalled by PID only; each has the daemon fixtures' watchdog, so nothing
 * outlives a test process that dies (see daemon.ts).
 *
 * Roles move (a killed primary's replica takes over; the old primary comes back as a replica), so
 * every wait reads CLUSTER NODES from every running node and returns once they all agree: the
 * create output says nothing about who replicates whom once the cluster settles.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { DaemonProcess, daemonBinary, exchange, HOST } from './daemon.js';
import { leftovers } from './exit-hook.js';
import { freePort } from './ports.js';
import { redisArgs, redisServerBinary } from './redis.js';

/** Slots in every Redis Cluster. */
export const CLUSTER_SLOTS = 16_384;

export interface RedisClusterOptions {
  /** Default 3, the fewest `redis-cli --cluster create` accepts. */
  readonly primaries?: number;
  /** Default 1. */
  readonly replicasPerPrimary?: number;
  /** Default 'everysec'; 'always' makes a SIGKILLed node lose nothing it acknowledged. */
  readonly appendfsync?: 'always' | 'everysec' | 'no';
  /** cluster-node-timeout, default 2000 ms: a dead primary is replaced a few seconds later. */
  readonly nodeTimeoutMs?: number;
  /** Per node, e.g. '64mb'; unset means no limit. */
  readonly maxmemory?: string;
  /** Appended to every node's arguments, last. */
  readonly extraArgs?: readonly string[];
  /** Bound on create + settle, and on each later wait unless it says otherwise. Default 30 s. */
  readonly timeoutMs?: number;
}

export type ClusterRole = 'primary' | 'replica';

/** One node. Role, primaryId and slots are what CLUSTER NODES said at the last settled wait. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
  /** The cluster bus port (cluster-port). */
  readonly busPort: number;
  /** The node id (CLUSTER MYID); kept across restarts in its nodes.conf. */
  readonly id: string;
  /** PID of the current process; changes on restart(). */
  readonly pid: number;
  readonly dir: string;
  readonly running: boolean;
  readonly role: ClusterRole;
  /** The id of the primary this node replicates; null for a primary. */
  readonly primaryId: string | null;
  /** Slot ranges it serves, inclusive ([[0, 5460]]); empty for a replica. */
  readonly slots: readonly (readonly [number, number])[];
}

export interface RedisCluster {
  /** Every node, in start order (roles as last seen). */
  readonly nodes: readonly ClusterNode[];
  /** "127.0.0.1:P1,127.0.0.1:P2,…", every node, for a config's seed list. */
  readonly seeds: string;
  /** The same as `{ host, port }`, for ioredis' `new Cluster(startupNodes)`. */
  readonly startupNodes: readonly { host: string; port: number }[];
  /** Crash: SIGKILL by PID. Its directory stays, so restart() brings it back with its nodes.conf. */
  kill(node: ClusterNode): Promise<void>;
  /** Starts the node again (SIGTERM first if it runs) and waits until the cluster settles with it. */
  restart(node: ClusterNode): Promise<void>;
  /** The primaries serving slots, from CLUSTER NODES of every running node once they agree. */
  primaries(): Promise<ClusterNode[]>;
  /** The current replicas of `primary` (as last seen). */
  replicasOf(primary: ClusterNode): ClusterNode[];
  /**
   * After kill(): waits until every slot is served by a running primary, cluster_state:ok on
   * every running node and all of them agree; resolves with the primaries then.
   */
  waitForFailover(timeoutMs?: number): Promise<ClusterNode[]>;
  /** `redis-cli --cluster reshard`: moves `slots` slots (and their keys) from one primary to another. */
  reshard(move: { from: ClusterNode; to: ClusterNode; slots: number }): Promise<void>;
  /** Ends every node by PID (SIGKILL: nothing is kept), then removes the directories. Idempotent. */
  stop(): Promise<void>;
}

/** One line of CLUSTER NODES. */
interface NodeLine {
  readonly id: string;
  readonly port: number;
  readonly flags: readonly string[];
  readonly primaryId: string | null;
  readonly slots: [number, number][];
}

class Node implements ClusterNode {
  readonly host = HOST;
  id = '';
  role: ClusterRole = 'primary';
  primaryId: string | null = null;
  slots: [number, number][] = [];

  readonly port: number;
  readonly busPort: number;
  readonly dir: string;
  readonly daemon: DaemonProcess;

  constructor(port: number, busPort: number, dir: string, daemon: DaemonProcess) {
    this.port = port;
    this.busPort = busPort;
    this.dir = dir;
    this.daemon = daemon;
  }

  get pid(): number {
    return this.daemon.pid;
  }

  get running(): boolean {
    return this.daemon.running;
  }
}

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisCluster> {
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicasPerPrimary ?? 1;
  if (primaries < 3) throw new Error('a Redis Cluster needs at least 3 primaries');
  const server = redisServerBinary();
  const cli = daemonBinary('redis-cli', 'redis-tools');
  const root = await mkdtemp(path.join(os.tmpdir(), 'moat-redis-cluster-'));
  leftovers().dirs.add(root);
  const cluster = new LocalCluster(cli, root, opts.timeoutMs ?? 30_000);
  try {
    const ports = await distinctFreePorts(2 * primaries * (1 + replicas));
    for (let i = 0; i < primaries * (1 + replicas); i++) {
      const [port, busPort] = [ports[2 * i] ?? 0, ports[2 * i + 1] ?? 0];
      const dir = path.join(root, String(port));
      await mkdir(dir);
      // biome-ignore format: flag/value pairs read best one pair per line
      const clusterArgs = [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', 'nodes.conf',
        '--cluster-port', String(busPort),
        '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2000),
        // A primary stopped by SIGTERM (restart()) does not wait up to 10 s for its replicas.
        '--shutdown-timeout', '0',
        // A replica's first sync starts at once, not 5 s later (the default waits for others).
        '--repl-diskless-sync-delay', '0',
      ];
      const args = redisArgs(port, dir, {
        appendfsync: opts.appendfsync ?? 'everysec',
        ...(opts.maxmemory === undefined ? {} : { maxmemory: opts.maxmemory }),
        extraArgs: [...clusterArgs, ...(opts.extraArgs ?? [])],
      });
      const daemon = new DaemonProcess({
        name: `redis cluster node ${port}`,
        binary: server,
        args,
        dir,
        logFiles: [path.join(dir, 'redis.log')],
        probe: async () => {
          const reply = await exchange(port, 'PING\r\n', {
            timeoutMs: 1000,
            done: (r) => r.includes('\r\n'),
          });
          return reply.startsWith('+PONG') ? true : reply.trim();
        },
        startTimeoutMs: 10_000,
      });
      cluster.add(new Node(port, busPort, dir, daemon));
    }
    await cluster.create(replicas);
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

class LocalCluster implements RedisCluster {
  readonly #nodes: Node[] = [];
  readonly #cli: string;
  readonly #root: string;
  readonly #timeoutMs: number;
  #stopped = false;

  constructor(cli: string, root: string, timeoutMs: number) {
    this.#cli = cli;
    this.#root = root;
    this.#timeoutMs = timeoutMs;
  }

  get nodes(): readonly ClusterNode[] {
    return this.#nodes;
  }

  get seeds(): string {
    return this.#nodes.map((n) => `${n.host}:${n.port}`).join(',');
  }

  get startupNodes(): { host: string; port: number }[] {
    return this.#nodes.map((n) => ({ host: n.host, port: n.port }));
  }

  add(node: Node): void {
    this.#nodes.push(node);
  }

  /** Starts every node at once, joins them, and waits until they agree. */
  async create(replicas: number): Promise<void> {
    await Promise.all(this.#nodes.map((n) => n.daemon.start()));
    for (const node of this.#nodes) node.id = String(await command(node.port, 'CLUSTER', 'MYID'));
    await this.#redisCli(
      [
        '--cluster',
        'create',
        ...this.#nodes.map((n) => `${n.host}:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      this.#timeoutMs,
    );
    // Replicas show as slot-less primaries until their CLUSTER REPLICATE has spread.
    await this.#settle('the cluster to form', this.#timeoutMs, (view) => {
      const primaries = view.filter((l) => l.slots.length > 0);
      for (const line of view) {
        if (line.slots.length === 0 && !line.flags.includes('slave')) return `${line.port} has no role yet`;
      }
      for (const primary of primaries) {
        const n = view.filter((l) => l.primaryId === primary.id).length;
        if (n !== replicas) return `${primary.port} has ${n} of ${replicas} replicas`;
      }
      return true;
    });
  }

  async kill(node: ClusterNode): Promise<void> {
    await this.#own(node).daemon.terminate('SIGKILL');
  }

  async restart(node: ClusterNode): Promise<void> {
    if (this.#stopped) throw new Error('the cluster was stopped and its directories removed');
    const own = this.#own(node);
    await own.daemon.terminate('SIGTERM');
    await own.daemon.start();
    await this.#settle(`node ${own.port} to rejoin`, this.#timeoutMs);
  }

  async primaries(): Promise<ClusterNode[]> {
    await this.#settle('the cluster to agree', this.#timeoutMs);
    return this.#primaries();
  }

  replicasOf(primary: ClusterNode): ClusterNode[] {
    return this.#nodes.filter((n) => n.role === 'replica' && n.primaryId === primary.id);
  }

  async waitForFailover(timeoutMs = this.#timeoutMs): Promise<ClusterNode[]> {
    await this.#settle('a running primary for every slot', timeoutMs);
    return this.#primaries();
  }

  async reshard(move: { from: ClusterNode; to: ClusterNode; slots: number }): Promise<void> {
    const { from, to, slots } = move;
    await this.#redisCli(
      [
        '--cluster',
        'reshard',
        `${to.host}:${to.port}`,
        '--cluster-from',
        from.id,
        '--cluster-to',
        to.id,
        '--cluster-slots',
        String(slots),
        '--cluster-yes',
      ],
      this.#timeoutMs,
    );
    await this.#settle(`${slots} slots to move from ${from.port} to ${to.port}`, this.#timeoutMs);
  }

  async stop(): Promise<void> {
    // SIGKILL: the data goes with the directories anyway, and a replica told to stop just after
    // a full sync (restart()) can hang in its shutdown until the 10 s escalation (redis 7.0.15).
    await Promise.all(this.#nodes.map((n) => n.daemon.terminate('SIGKILL')));
    if (this.#stopped) return;
    this.#stopped = true;
    leftovers().dirs.delete(this.#root);
    await rm(this.#root, { recursive: true, force: true });
  }

  #own(node: ClusterNode): Node {
    const own = this.#nodes.find((n) => n.port === node.port);
    if (!own) throw new Error(`port ${node.port} is not a node of this cluster`);
    return own;
  }

  #primaries(): Node[] {
    return this.#nodes.filter((n) => n.role === 'primary' && n.slots.length > 0);
  }

  /**
   * Polls every running node until all say cluster_state:ok, all list the same primaries with
   * the same slots, every slot is served by a running primary, no running node is flagged as
   * failing or still being met, every running replica's link to its primary is up, and `also`
   * accepts the view. Then copies roles and slots into the nodes.
   */
  async #settle(
    what: string,
    timeoutMs: number,
    also: (view: NodeLine[]) => true | string = () => true,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'not asked yet';
    for (;;) {
      let view = await this.#agreedView().catch((err: unknown) => (err as Error).message);
      if (typeof view !== 'string') {
        const extra = also(view);
        if (extra !== true) view = extra;
      }
      if (typeof view !== 'string') {
        for (const node of this.#nodes) {
          const line = view.find((l) => l.port === node.port);
          if (!line) continue;
          node.role = line.flags.includes('master') ? 'primary' : 'replica';
          node.primaryId = line.primaryId;
          node.slots = line.slots;
        }
        return;
      }
      last = view;
      if (Date.now() > deadline) {
        const logs = this.#nodes.map((n) => n.daemon.logTail(8)).join('\n');
        throw new Error(`redis cluster: waited ${timeoutMs} ms for ${what}; last: ${last}\n${logs}`);
      }
      await sleep(100);
    }
  }

  /** The view every running node shares, or throws saying what is not settled yet. */
  async #agreedView(): Promise<NodeLine[]> {
    const running = this.#nodes.filter((n) => n.running);
    if (running.length === 0) throw new Error('no node is running');
    const views = await Promise.all(
      running.map(async (node) => {
        const info = String(await command(node.port, 'CLUSTER', 'INFO'));
        if (!/^cluster_state:ok\r?$/m.test(info)) throw new Error(`${node.port}: cluster_state is not ok`);
        return { node, lines: parseClusterNodes(String(await command(node.port, 'CLUSTER', 'NODES'))) };
      }),
    );
    const runningPorts = new Set(running.map((n) => n.port));
    const owners = (lines: NodeLine[]) =>
      lines
        .filter((l) => l.slots.length > 0)
        .map((l) => `${l.port}:${l.slots.map(([a, b]) => `${a}-${b}`).join(',')}`)
        .sort()
        .join(' ');
    const first = views[0];
    if (!first) throw new Error('no view');
    const agreed = owners(first.lines);
    for (const { node, lines } of views) {
      if (owners(lines) !== agreed) throw new Error(`${node.port} sees other slot owners: ${owners(lines)}`);
      for (const line of lines) {
        if (!runningPorts.has(line.port)) continue;
        const bad = line.flags.find((f) => ['fail', 'fail?', 'handshake', 'noaddr'].includes(f));
        if (bad) throw new Error(`${node.port} flags ${line.port} as ${bad}`);
      }
    }
    let covered = 0;
    for (const line of first.lines.filter((l) => l.slots.length > 0)) {
      if (!runningPorts.has(line.port)) throw new Error(`slots still served by stopped node ${line.port}`);
      for (const [a, b] of line.slots) covered += b - a + 1;
    }
    if (covered !== CLUSTER_SLOTS) throw new Error(`${covered} of ${CLUSTER_SLOTS} slots served`);
    for (const line of first.lines) {
      if (!line.flags.includes('slave') || !runningPorts.has(line.port)) continue;
      const info = String(await command(line.port, 'INFO', 'replication'));
      if (!/^master_link_status:up\r?$/m.test(info)) throw new Error(`replica ${line.port} is not in sync`);
    }
    return first.lines;
  }

  #redisCli(args: string[], timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.#cli, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(`redis-cli ${args.slice(0, 2).join(' ')} failed: ${err.message}\n${stdout}${stderr}`),
          );
        else resolve(stdout);
      });
    });
  }
}

/**
 * CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <primary|-> <ping> <pong> <epoch>
 * <link> <slot or range>…`; slots being migrated (`[5461->-id]`) are left out.
 */
export function parseClusterNodes(text: string): NodeLine[] {
  const lines: NodeLine[] = [];
  for (const row of text.split('\n')) {
    const fields = row.trim().split(' ');
    const [id, address, flags, primary] = fields;
    if (!id || !address || !flags || !primary) continue;
    const port = Number(/:(\d+)@/.exec(address)?.[1] ?? Number.NaN);
    const slots: [number, number][] = [];
    for (const slot of fields.slice(8)) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(slot);
      if (m) slots.push([Number(m[1]), Number(m[2] ?? m[1])]);
    }
    slots.sort((a, b) => a[0] - b[0]);
    lines.push({ id, port, flags: flags.split(','), primaryId: primary === '-' ? null : primary, slots });
  }
  return lines;
}

/** One command on a short-lived connection (nodes come and go: no client is kept). */
async function command(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableReadyCheck: false,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    const [name, ...rest] = args;
    return await client.call(name ?? 'PING', ...rest);
  } finally {
    client.disconnect();
  }
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}
