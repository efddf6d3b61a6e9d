/**
 * Waiting on events with a way out: a signal (Ctrl-C) or a deadline. Each wait clears its own timer
 * and listener when it settles, so nothing it leaves behind holds the process open.
 */
import { FedsliceError } from '../core/errors.ts';

export class Interrupted extends FedsliceError {
  constructor(signalName: string) {
    super('FEDSLICE_ERR_INTERRUPTED', `interrupted by ${signalName}`);
  }
}

export function interruptedBy(signal: AbortSignal): Interrupted {
  return new Interrupted(String(signal.reason ?? 'signal'));
}

/** `p`, or an Interrupted rejection as soon as `signal` aborts (then `onAbort` releases what `p` holds). */
export function abortable<T>(p: Promise<T>, signal: AbortSignal, onAbort?: () => void): Promise<T> {
  if (signal.aborted) {
    onAbort?.();
    return Promise.reject(interruptedBy(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const stop = () => {
      onAbort?.();
      reject(interruptedBy(signal));
    };
    signal.addEventListener('abort', stop, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', stop));
  });
}

/** `p`, or the error `timedOut()` makes if `p` has not settled within `ms`, or Interrupted on `signal`. */
export function withDeadline<T>(p: Promise<T>, ms: number, timedOut: () => Error, signal: AbortSignal): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timed = new Promise<T>((resolve, reject) => {
    timer = setTimeout(() => reject(timedOut()), ms);
    p.then(resolve, reject);
  }).finally(() => clearTimeout(timer));
  return abortable(timed, signal, () => clearTimeout(timer));
}
