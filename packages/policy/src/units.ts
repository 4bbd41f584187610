/**
 * Sizes and durations as people write them in a config file ("35MB", "1h30m", "5d"),
 * parsed by one function each so no other module interprets units ad hoc.
 */

const SIZE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: string };

/** "35MB" → 36700160. Units are binary (1 MB = 1024 KB), as mail servers count them; a bare number is bytes. */
export function parseSize(input: string | number): ParseResult<number> {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0
      ? { ok: true, value: input }
      : { ok: false, error: `size must be a whole number of bytes >= 0, got ${input}` };
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input);
  if (!m) return { ok: false, error: `"${input}" is not a size (write e.g. 35MB, 512KB, 1048576)` };
  const unit = (m[2] ?? '').toLowerCase() || 'b';
  const factor = SIZE_UNITS[unit];
  if (factor === undefined)
    return { ok: false, error: `"${input}" has an unknown size unit "${m[2]}" (use B, KB, MB, GB)` };
  const value = Math.round(Number(m[1]) * factor);
  if (!Number.isSafeInteger(value)) return { ok: false, error: `"${input}" is too large` };
  return { ok: true, value };
}

const DURATION_UNITS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** "1h30m" → 5400000 ms. A bare number is milliseconds. Units: ms, s, m, h, d, w. */
export function parseDuration(input: string | number): ParseResult<number> {
  if (typeof input === 'number') {
    return Number.isSafeInteger(input) && input >= 0
      ? { ok: true, value: input }
      : { ok: false, error: `duration must be a whole number of milliseconds >= 0, got ${input}` };
  }
  const text = input.trim().toLowerCase();
  if (/^\d+$/.test(text)) return { ok: true, value: Number(text) };
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/y;
  let total = 0;
  let pos = 0;
  while (pos < text.length) {
    part.lastIndex = pos;
    const m = part.exec(text);
    if (!m) return { ok: false, error: `"${input}" is not a duration (write e.g. 30s, 5m, 4h, 5d, 1h30m)` };
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    pos = part.lastIndex;
  }
  if (text.length === 0) return { ok: false, error: 'duration is empty' };
  return { ok: true, value: Math.round(total) };
}

/** 36700160 → "35MB": the shortest exact binary unit, for messages and the effective config. */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['GB', 1024 ** 3],
    ['MB', 1024 ** 2],
    ['KB', 1024],
  ] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}

/** 5400000 → "1h30m". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const [unit, factor] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= factor) {
      out += `${Math.floor(rest / factor)}${unit}`;
      rest %= factor;
    }
  }
  if (rest > 0) out += `${rest}ms`;
  return out;
}

/** A rate limit: at most `count` in any window of `perMs`. */
export interface Rate {
  readonly count: number;
  readonly perMs: number;
}

/** "60/1m", "500/1h", "10/30s" (count / duration) → { count, perMs }. */
export function parseRate(input: string | number): ParseResult<Rate> {
  const m = typeof input === 'string' ? /^\s*(\d+)\s*\/\s*(\S+)\s*$/.exec(input) : null;
  const count = Number(m?.[1]);
  const per = m?.[2] === undefined ? null : parseDuration(/^\d/.test(m[2]) ? m[2] : `1${m[2]}`);
  if (!m || !Number.isSafeInteger(count) || count < 1 || per === null || !per.ok || per.value < 1000) {
    return {
      ok: false,
      error: `"${input}" is not a rate (write count/duration with a duration of 1s or more, e.g. 60/1m, 500/1h)`,
    };
  }
  return { ok: true, value: { count, perMs: per.value } };
}

/** { count: 60, perMs: 60000 } → "60/1m". */
export function formatRate(rate: Rate): string {
  return `${rate.count}/${formatDuration(rate.perMs)}`;
}
