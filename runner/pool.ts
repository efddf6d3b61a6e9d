/**
 * Runs jobs in queue order under a capacity: a job starts when its cost fits what is free
 * (strictly first come, first served, so a wide run is never starved by narrow ones behind it).
 * `--parallel N` is capacity N at cost 1 each; the default is the machine's cores at one core
 * per trainer. A job that throws stops new starts; the pool rethrows once the rest end.
 */
export interface PoolOptions<T> {
  capacity: number;
  /** Clamped to the capacity, so a job wider than the machine still runs (alone). */
  cost: (item: T) => number;
  /** No new job starts once this is aborted; running ones are left to finish. */
  signal?: AbortSignal;
}

export async function runPool<T>(items: readonly T[], o: PoolOptions<T>, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  let free = o.capacity;
  const running = new Set<Promise<void>>();
  const costOf = (item: T) => Math.max(1, Math.min(o.capacity, o.cost(item)));
  const failures: unknown[] = [];
  while (queue.length && !o.signal?.aborted && !failures.length) {
    const next = queue[0];
    if (costOf(next) > free) {
      await Promise.race(running);
      continue;
    }
    queue.shift();
    const cost = costOf(next);
    free -= cost;
    const p: Promise<void> = work(next)
      .catch((e) => {
        failures.push(e);
      })
      .finally(() => {
        free += cost;
        running.delete(p);
      });
    running.add(p);
  }
  await Promise.all(running);
  if (failures.length) throw failures[0];
}
