/**
 * What every chaos scenario runs: N `moat edge` and M `moat worker` processes (the built
 * command) sharing one Redis and one smart host (a sink), each member killed, restarted on its
 * own port and stopped by its PID only.
 */
import { freePort } from '@moat/testkit';
import { type MoatProcess, startMoat } from '../src/moat-process.js';

export interface FleetOptions {
  /** Config files and Moat's dataDir. */
  readonly dir: string;
  readonly edges: number;
  readonly workers: number;
  /** The `redis` section: url, and ack, replicas, timeout, maxMemoryUsage… as a scenario needs. */
  readonly redis: { readonly url: string } & Record<string, unknown>;
  /** The smart host of example.com. */
  readonly sinkPort: number;
  /** `127.0.0.1:PORT` of the test's DNS server. */
  readonly dns: string;
  /** Overrides of the `delivery` section. */
  readonly delivery?: Record<string, unknown>;
}

export interface Member {
  readonly name: string;
  readonly role: 'edge' | 'worker';
  /** The SMTP port (edges; workers have one too, unused). */
  readonly port: number;
  /** The current process; a new one after restart(). */
  readonly process: MoatProcess;
}

class FleetMember implements Member {
  readonly name: string;
  readonly role: 'edge' | 'worker';
  readonly port: number;
  process: MoatProcess;
  starts = 1;

  constructor(name: string, role: 'edge' | 'worker', port: number, process: MoatProcess) {
    this.name = name;
    this.role = role;
    this.port = port;
    this.process = process;
  }
}

export class Fleet {
  readonly #opts: FleetOptions;
  readonly #members: FleetMember[] = [];
  /** Every process ever started, for stop(). */
  readonly #all: MoatProcess[] = [];

  private constructor(opts: FleetOptions) {
    this.#opts = opts;
  }

  /** Starts every member at once and waits until each has logged moat.ready. */
  static async start(opts: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(opts);
    try {
      const roles = [
        ...Array.from({ length: opts.edges }, (_, i) => ['edge', `edge${i + 1}`] as const),
        ...Array.from({ length: opts.workers }, (_, i) => ['worker', `worker${i + 1}`] as const),
      ];
      await Promise.all(
        roles.map(async ([role, name]) => {
          const port = await freePort();
          const moat = await fleet.#spawn(role, name, port, 1);
          fleet.#members.push(new FleetMember(name, role, port, moat));
          await moat.waitForEvent('moat.ready', 30_000);
        }),
      );
      fleet.#members.sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  get edges(): Member[] {
    return this.#members.filter((m) => m.role === 'edge');
  }

  get workers(): Member[] {
    return this.#members.filter((m) => m.role === 'worker');
  }

  /** The edges' SMTP ports, for the load driver (a killed edge stays listed: clients find it closed). */
  edgePorts(): number[] {
    return this.edges.map((m) => m.port);
  }

  /** SIGKILL by PID. */
  async kill(member: Member): Promise<void> {
    await this.#own(member).process.kill();
  }

  /** A new process for the member (same role, port and config), once it has logged moat.ready. */
  async restart(member: Member): Promise<void> {
    const own = this.#own(member);
    await own.process.stop();
    own.starts++;
    own.process = await this.#spawn(own.role, own.name, own.port, own.starts);
    await own.process.waitForEvent('moat.ready', 30_000);
  }

  /** SIGTERM to every process still running, by PID; each one's exit code (or 'timeout', then killed). */
  async stop(): Promise<Record<string, number | 'timeout'>> {
    const codes: Record<string, number | 'timeout'> = {};
    await Promise.all(
      this.#members.map(async (m) => {
        codes[m.name] = await m.process.stop();
      }),
    );
    // Processes replaced by restart() were already stopped or killed; this only waits for them.
    await Promise.all(this.#all.map((p) => p.stop()));
    return codes;
  }

  #own(member: Member): FleetMember {
    const own = this.#members.find((m) => m.name === member.name);
    if (!own) throw new Error(`${member.name} is not in this fleet`);
    return own;
  }

  async #spawn(role: 'edge' | 'worker', name: string, port: number, start: number): Promise<MoatProcess> {
    const { dir, redis, sinkPort, dns, delivery } = this.#opts;
    const config = {
      hostname: 'relay.test',
      dataDir: dir,
      redis: { prefix: 'chaos', ...redis },
      smtp: { listen: [`127.0.0.1:${port}`], banner: `Moat ${name}` },
      inbound: { domains: { 'example.com': `[127.0.0.1]:${sinkPort}` } },
      delivery: {
        concurrency: 4,
        maxConnectionsPerHost: 4,
        // A killed worker's jobs go to the other one after about 2 s, not 30.
        lockDuration: '2s',
        stalledInterval: '1s',
        retry: ['1s'],
        connectTimeout: '2s',
        ...delivery,
      },
      dns: { servers: [dns], timeout: '1s' },
      admin: { listen: null },
      log: { level: 'info' },
    };
    const moat = await startMoat(role, config, dir, start === 1 ? name : `${name}-${start}`);
    this.#all.push(moat);
    return moat;
  }
}
