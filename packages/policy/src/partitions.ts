/** Which queue partitions a worker process delivers from (delivery.partitions). */

/**
 * The partitions in `spec` (numbers and "a-b" ranges) that exist (0…highest), in order;
 * every one of them when `spec` is null.
 */
export function selectPartitions(spec: readonly (number | string)[] | null, highest: number): number[] {
  const all = Array.from({ length: highest + 1 }, (_, i) => i);
  if (spec === null) return all;
  const chosen = new Set<number>();
  for (const item of spec) {
    const [from, to] =
      typeof item === 'number' ? [item, item] : (item.split('-').map(Number) as [number, number]);
    for (let p = from; p <= Math.min(to, highest); p++) chosen.add(p);
  }
  return all.filter((p) => chosen.has(p));
}
