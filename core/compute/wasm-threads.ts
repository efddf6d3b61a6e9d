/**
 * Multithreaded wasm under Node. tfjs-backend-wasm 4.22 turns threads off under Node and, were
 * they on, would start emscripten's pthread workers from blob: URLs, which Node's worker_threads
 * cannot open; its C++ side also caps the pool at os.cpus().length / 2 (1 on a 2-core machine).
 * Before the backend initialises we therefore: declare threads supported, have the worker blob's
 * URL resolve to core/compute/wasm-pthread-worker.cjs (a worker file on disk that loads the threaded
 * module from disk), and report enough cores for the count asked. The pool's threads are unref'd
 * so they never keep a finished process alive.
 */
import Module, { createRequire } from 'node:module';
import os from 'node:os';
import * as tf from './tf.ts';
import { packagePath } from '../package-root.ts';
import { MAX_WASM_THREADS, THREADS_ENV } from './backend-names.ts';

const WORKER_FILE = packagePath('core', 'compute', 'wasm-pthread-worker.cjs');

/**
 * Emscripten's threaded build starts a pool of 8 pthread workers whatever the thread count asked,
 * and the backend is ready only once every one has booted a Node worker and instantiated the
 * module: a 2-thread role (XNNPACK takes 1 pool worker) started in 1.54 s of CPU against 0.89
 * with the pool sized (medians of 4, interleaved, under load). sizePthreadPool() rewrites that constant as the package's file is
 * compiled, to read the size withWasmThreads sets (the threads asked: one more than XNNPACK's
 * pool takes, and never more than the 8 it had).
 */
const POOL_SIZE_SOURCE = 'var pthreadPoolSize = 8;';
const POOL_SIZE_GLOBAL = '__fedslicePthreadPoolSize';
const poolSize = globalThis as { [POOL_SIZE_GLOBAL]?: number };

/** Call before the first import of @tensorflow/tfjs-backend-wasm; a no-op once it is loaded. */
export function sizePthreadPool(): void {
  const require = createRequire(import.meta.url);
  const file = require.resolve('@tensorflow/tfjs-backend-wasm');
  if (require.cache[file]) return;
  // Node's CommonJS loader compiles every file through this method (an internal, so untyped)
  const loader = Module.prototype as unknown as { _compile(this: unknown, content: string, filename: string): unknown };
  const compile = loader._compile;
  loader._compile = function (content, filename) {
    if (filename !== file) return compile.call(this, content, filename);
    loader._compile = compile;
    if (!content.includes(POOL_SIZE_SOURCE)) return compile.call(this, content, filename); // another build: its own pool
    return compile.call(this, content.replace(POOL_SIZE_SOURCE, `var pthreadPoolSize = globalThis.${POOL_SIZE_GLOBAL} ?? 8;`), filename);
  };
}

/**
 * Threads to ask for: FEDSLICE_WASM_THREADS (a count, or "auto"), which the sweep runner sets to
 * each role's share of the cores; unset or "auto", every core (a role started by hand is alone).
 */
export function requestedWasmThreads(env: NodeJS.ProcessEnv = process.env): number | string {
  const raw = (env[THREADS_ENV] ?? 'auto').trim();
  if (raw === 'auto') return Math.min(MAX_WASM_THREADS, Math.max(1, os.availableParallelism()));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) return `${THREADS_ENV} must be "auto" or a whole number from 1 to ${MAX_WASM_THREADS}, got '${raw}'`;
  return n;
}

/**
 * Run `init` (the backend's initialisation) with `threads` pthreads available to XNNPACK. With 1
 * the single-threaded SIMD build is used as before.
 */
export async function withWasmThreads<T>(threads: number, setThreadsCount: (n: number) => void, init: () => Promise<T>): Promise<T> {
  if (threads <= 1) return init();
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  setThreadsCount(threads);
  const createObjectURL = URL.createObjectURL;
  const cpus = os.cpus;
  const real = cpus();
  URL.createObjectURL = (obj: Blob | MediaSource) =>
    obj instanceof Blob && obj.type === 'application/javascript' ? WORKER_FILE : createObjectURL(obj as Blob);
  // the wasm side uses min(asked, logical cores / 2) threads
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => real[i % real.length]);
  poolSize[POOL_SIZE_GLOBAL] = threads;
  try {
    return await init();
  } finally {
    URL.createObjectURL = createObjectURL;
    os.cpus = cpus;
    delete poolSize[POOL_SIZE_GLOBAL];
  }
}

interface EmscriptenWorkers {
  PThread?: { runningWorkers: Array<{ unref(): void }>; unusedWorkers: Array<{ unref(): void }> };
}

/** Let the process exit while the pool's threads idle (emscripten refs a worker while it runs). */
export function unrefWasmWorkers(): void {
  const module = (tf.backend() as unknown as { wasm?: EmscriptenWorkers }).wasm;
  for (const w of [...(module?.PThread?.runningWorkers ?? []), ...(module?.PThread?.unusedWorkers ?? [])]) w.unref();
}
