/**
 * A static list of valid recipients: a file of addresses, one per line, and `@domain` lines
 * that accept every address of the domain (catch-all); `#` starts a comment. Looked at again
 * every `checkIntervalMs` and reloaded when it changed, so an administrator edits it in place.
 * A reload that fails keeps the list that was loaded (and says so to the caller's log).
 */
import { readFileSync, statSync } from 'node:fs';

export type ReloadEvent = { file: string; entries: number } | { file: string; error: string };

export class StaticRecipients {
  readonly file: string;
  readonly #checkIntervalMs: number;
  readonly #onReload: (event: ReloadEvent) => void;
  #addresses = new Set<string>();
  #catchAll = new Set<string>();
  #stamp = '';
  #checkedAt = 0;

  /** Loads the file now: a file that cannot be read throws (at start, with its name). */
  constructor(file: string, checkIntervalMs: number, onReload: (event: ReloadEvent) => void = () => {}) {
    this.file = file;
    this.#checkIntervalMs = checkIntervalMs;
    this.#onReload = onReload;
    this.#load();
  }

  /** Whether the address (or its domain, as a catch-all) is on the list. */
  has(address: string): boolean {
    this.#maybeReload();
    const lower = address.toLowerCase();
    return this.#addresses.has(lower) || this.#catchAll.has(lower.slice(lower.lastIndexOf('@') + 1));
  }

  #maybeReload(): void {
    const now = Date.now();
    if (now - this.#checkedAt < this.#checkIntervalMs) return;
    this.#checkedAt = now;
    try {
      if (stampOf(this.file) !== this.#stamp) {
        this.#load();
        this.#onReload({ file: this.file, entries: this.#addresses.size + this.#catchAll.size });
      }
    } catch (err) {
      this.#onReload({ file: this.file, error: (err as Error).message });
    }
  }

  #load(): void {
    const stamp = stampOf(this.file);
    const addresses = new Set<string>();
    const catchAll = new Set<string>();
    for (const raw of readFileSync(this.file, 'utf8').split(/\r?\n/)) {
      const line = raw.replace(/#.*/, '').trim().toLowerCase();
      if (line === '') continue;
      if (line.startsWith('@')) catchAll.add(line.slice(1));
      else if (line.includes('@')) addresses.add(line);
    }
    this.#addresses = addresses;
    this.#catchAll = catchAll;
    this.#stamp = stamp;
    this.#checkedAt = Date.now();
  }
}

function stampOf(file: string): string {
  const s = statSync(file);
  return `${s.mtimeMs}:${s.size}:${s.ino}`;
}
