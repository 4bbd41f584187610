/**
 * Watches the filters' daemons: every few seconds each probe (clamd PING, Rspamd /ping,
 * spamd PING) is asked, and what it answered is kept, so /ready and the heartbeat can say
 * which configured daemon is unreachable without asking on the request's time. Changes are
 * reported once (down, then up again), not on every probe.
 */
import type { FilterProbe } from './from-config.js';

export interface MonitorEvents {
  down(filter: string, error: string): void;
  up(filter: string): void;
}

export class FilterMonitor {
  readonly #probes: readonly FilterProbe[];
  readonly #events: MonitorEvents;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #up = new Map<string, boolean>();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    probes: readonly FilterProbe[],
    events: MonitorEvents,
    options: { intervalMs?: number; timeoutMs?: number } = {},
  ) {
    this.#probes = probes;
    this.#events = events;
    this.#intervalMs = options.intervalMs ?? 10_000;
    this.#timeoutMs = options.timeoutMs ?? 3000;
  }

  /** Probes once now (resolves when every probe answered or timed out), then every interval. */
  async start(): Promise<void> {
    await this.probe();
    this.#timer = setInterval(() => void this.probe(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async probe(): Promise<void> {
    await Promise.all(
      this.#probes.map(async (p) => {
        const signal = AbortSignal.timeout(this.#timeoutMs);
        const was = this.#up.get(p.name);
        try {
          await p.check(signal);
          this.#up.set(p.name, true);
          if (was === false) this.#events.up(p.name);
        } catch (err) {
          this.#up.set(p.name, false);
          if (was !== false) this.#events.down(p.name, (err as Error).message);
        }
      }),
    );
  }

  /** Each probed filter: whether its daemon answered last time (`filter:<name>` for /ready). */
  readiness(): Record<string, boolean> {
    return Object.fromEntries([...this.#up].map(([name, up]) => [`filter:${name}`, up]));
  }

  /** For the heartbeat: `filterUp:<name>` 1 or 0. */
  stats(): Record<string, number> {
    return Object.fromEntries([...this.#up].map(([name, up]) => [`filterUp:${name}`, up ? 1 : 0]));
  }
}
