/** Concurrent sessions in total and per client address (421 4.7.0 past either). */
import { Replies, type Reply } from '@moat/policy';

export class ConnectionLimiter {
  readonly #perIp = new Map<string, number>();
  #total = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly maxPerIp: number,
  ) {}

  get total(): number {
    return this.#total;
  }

  /** Take a slot, or say which limit refuses it. */
  acquire(ip: string): Reply | null {
    if (this.#total >= this.maxTotal) return Replies.tooManyConnections;
    const mine = this.#perIp.get(ip) ?? 0;
    if (mine >= this.maxPerIp) return Replies.tooManyConnectionsFromYou;
    this.#perIp.set(ip, mine + 1);
    this.#total += 1;
    return null;
  }

  release(ip: string): void {
    const mine = this.#perIp.get(ip) ?? 0;
    if (mine <= 1) this.#perIp.delete(ip);
    else this.#perIp.set(ip, mine - 1);
    this.#total = Math.max(0, this.#total - 1);
  }
}
