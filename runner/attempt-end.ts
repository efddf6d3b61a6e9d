/**
 * An attempt ends in one of three ways: what the executor watches reports (the aggregator
 * exited, the Slurm job left the queue), its --timeout passes, or the sweep is stopped.
 */
export type EndCause<T> = { by: 'event'; value: T } | { by: 'timeout' } | { by: 'abort' };

/**
 * The first of those ends. `watch` gets the function to report with and returns how to stop
 * watching; whichever end comes first, the watch, the timer and the abort listener are undone.
 */
export function firstEnd<T>(o: { signal: AbortSignal; timeoutS: number }, watch: (report: (value: T) => void) => () => void): Promise<EndCause<T>> {
  return new Promise((resolve) => {
    let settled = false;
    let unwatch = () => {};
    const end = (cause: EndCause<T>) => {
      if (settled) return;
      settled = true;
      unwatch();
      if (timer) clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      resolve(cause);
    };
    const onAbort = () => end({ by: 'abort' });
    const timer = o.timeoutS > 0 ? setTimeout(() => end({ by: 'timeout' }), o.timeoutS * 1000) : null;
    unwatch = watch((value) => end({ by: 'event', value }));
    if (settled) unwatch(); // reported at once, before `unwatch` was known
    else if (o.signal.aborted) onAbort();
    else o.signal.addEventListener('abort', onAbort, { once: true });
  });
}

export const timedOut = (timeoutS: number): string => `timed out after ${timeoutS} s (--timeout)`;
