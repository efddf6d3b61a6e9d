/**
 * Threads of our own for the hand-written wasm kernels. tfjs-backend-wasm's pthread pool runs only
 * its own C++ kernels; a kernel of ours runs on the JS main thread, so with 2 wasm threads it would
 * leave one core idle. Each helper here is a worker_thread holding an instance of the same kernel
 * module over the backend's shared memory (the threaded build's memory is a SharedArrayBuffer),
 * parked in Atomics.wait between jobs (no CPU while idle; woken in microseconds).
 *
 * A job is a driver: a self-contained function (no closures, no inner functions: the workers get
 * its source text) `(fns, params, from, to)` that runs work items [from, to) with the module's
 * exported functions `fns` and an Int32Array of parameters. `run` shares the items between the main
 * thread and the helpers that are ready (a helper still starting takes no share): each thread takes
 * the next chunk of items from a counter in shared memory (Atomics.add) until none is left, so a
 * thread the OS leaves waiting, or one slower share, no longer holds the others up at the end of
 * the job; the main thread then waits for the helpers' last chunks. Items must write disjoint
 * memory and each is computed whole by one driver call, so which thread runs an item changes no
 * bit. FEDSLICE_SHARED_WORK=off (or setSharedWork(false)) splits them into fixed equal parts instead.
 */
import { Worker } from 'node:worker_threads';
import { FedsliceError } from '../errors.ts';
import { instantiateOver, isShared, moduleBytes, type WasmFunction } from './wasm-asm.ts';
import { wasmBackendMemory } from './backend-kernel.ts';

export type Driver = (fns: Array<(...args: number[]) => void>, params: Int32Array, from: number, to: number) => void;

// control words of each helper's Int32Array; the job's parameters follow
const SEQ = 0; // job number, bumped by the main thread to start a job
const DONE = 1; // job number the helper finished last
const FAILED = 2; // 1 when that job threw
const READY = 3; // 1 once the helper has instantiated the module
const FROM = 4;
const TO = 5;
const CHUNK = 6; // 0: run [FROM, TO); else take chunks of this many items below TO from the shared counter
const PARAMS = 7;
const MAX_PARAMS = 32;
const WAIT_MS = 60_000;
/**
 * Waits on either side are taken in slices this long, each followed by a fresh look at the control
 * word. A whole-job wait once sat out its full minute in a real round though the helper had
 * finished: a wake-up can be missed, and a thread that returns from a wait also lets V8 service
 * the interrupts (a shared memory's growth, for one) that a thread parked in a long wait does not.
 */
const SLICE_MS = 5;
/** An idle helper looks again this often: a missed job costs at most this, and idling costs nothing measurable. */
const IDLE_SLICE_MS = 50;

let sharedWork = process.env.FEDSLICE_SHARED_WORK !== 'off';

/** Threads take chunks of a job from a shared counter (true, the default) or fixed equal parts (false), for comparisons. */
export function setSharedWork(enabled: boolean): void {
  sharedWork = enabled;
}

/** Runs chunks of `chunk` items below `to`, taken from `next[0]`, until none is left (also the main thread's loop). */
function takeChunks(drive: Driver, fns: Array<(...args: number[]) => void>, params: Int32Array, next: Int32Array, chunk: number, to: number): void {
  for (;;) {
    const from = Atomics.add(next, 0, chunk);
    if (from >= to) return;
    drive(fns, params, from, Math.min(from + chunk, to));
  }
}

/** The worker's code; `drive` is spliced in as source text. */
function workerSource(driver: Driver): string {
  return `
const { workerData } = require('node:worker_threads');
const { memory, bytes, names, control, counter } = workerData;
const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } }).exports;
const fns = names.map((n) => exports[n]);
const drive = (${driver.toString()});
const takeChunks = (${takeChunks.toString()});
const next = new Int32Array(counter);
const c = new Int32Array(control);
const params = c.subarray(${PARAMS});
Atomics.store(c, ${READY}, 1);
let seq = 0;
for (;;) {
  while (Atomics.load(c, ${SEQ}) === seq) Atomics.wait(c, ${SEQ}, seq, ${IDLE_SLICE_MS});
  seq = Atomics.load(c, ${SEQ});
  try {
    if (c[${CHUNK}] > 0) takeChunks(drive, fns, params, next, c[${CHUNK}], c[${TO}]);
    else drive(fns, params, c[${FROM}], c[${TO}]);
    c[${FAILED}] = 0;
  } catch (e) {
    c[${FAILED}] = 1;
  }
  Atomics.store(c, ${DONE}, seq);
  Atomics.notify(c, ${DONE});
}
`;
}

export class WasmHelperThreads {
  private readonly controls: Int32Array[] = [];
  /** The next item not yet taken, shared by this thread and the helpers. */
  private readonly next = new Int32Array(new SharedArrayBuffer(4));
  private seq = 0;

  /**
   * `count` helpers over `memory` (shared), each instantiating `bytes` and calling its exports
   * `names` (in that order) through `driver`; a job is cut into `chunksPerThread` chunks per thread.
   */
  constructor(
    count: number,
    memory: WebAssembly.Memory,
    bytes: Uint8Array,
    names: string[],
    private readonly driver: Driver,
    private readonly fns: Array<(...args: number[]) => void>,
    private readonly chunksPerThread: number,
  ) {
    const source = workerSource(driver);
    for (let i = 0; i < count; i++) {
      const control = new SharedArrayBuffer(4 * (PARAMS + MAX_PARAMS));
      const worker = new Worker(source, { eval: true, workerData: { memory, bytes, names, control, counter: this.next.buffer } });
      worker.unref();
      // a helper that fails to start never becomes ready, so it is never given work
      worker.on('error', () => undefined);
      this.controls.push(new Int32Array(control));
    }
  }

  /** Helpers ready to take a share now. */
  ready(): number {
    return this.controls.filter((c) => Atomics.load(c, READY) === 1).length;
  }

  /** Run items [0, items) of the driver with `params`, shared between this thread and the ready helpers. */
  run(params: ArrayLike<number>, items: number): void {
    if (params.length > MAX_PARAMS) throw new RangeError(`at most ${MAX_PARAMS} driver parameters`);
    const helpers = this.controls.filter((c) => Atomics.load(c, READY) === 1);
    const parts = helpers.length + 1;
    const bound = (i: number) => Math.round((items * i) / parts);
    const chunk = sharedWork ? Math.max(1, Math.ceil(items / (parts * this.chunksPerThread))) : 0;
    Atomics.store(this.next, 0, 0);
    this.seq = (this.seq + 1) | 0;
    helpers.forEach((c, i) => {
      c.set(params, PARAMS);
      c[FROM] = bound(i + 1);
      c[TO] = chunk > 0 ? items : bound(i + 2);
      c[CHUNK] = chunk;
      Atomics.store(c, SEQ, this.seq);
      Atomics.notify(c, SEQ);
    });
    const own = Int32Array.from(params);
    if (chunk > 0) takeChunks(this.driver, this.fns, own, this.next, chunk, items);
    else this.driver(this.fns, own, 0, bound(1));
    const deadline = performance.now() + WAIT_MS;
    for (const c of helpers) {
      while (Atomics.load(c, DONE) !== this.seq) {
        Atomics.wait(c, DONE, Atomics.load(c, DONE), SLICE_MS);
        if (Atomics.load(c, DONE) !== this.seq && performance.now() > deadline) {
          throw new FedsliceError('FEDSLICE_ERR_KERNEL', `a wasm helper thread did not finish its share within ${WAIT_MS / 1000} s; run with FEDSLICE_WASM_THREADS=1`);
        }
      }
      if (c[FAILED] === 1) throw new FedsliceError('FEDSLICE_ERR_KERNEL', 'a wasm helper thread failed in a kernel; run with FEDSLICE_WASM_THREADS=1');
    }
  }
}

/** Below this many multiply-adds (~1 ms on one thread) waking a helper costs more than it saves. */
const MIN_THREADED_MACS = 8_000_000;

type Fn = (...args: number[]) => void;

interface Made {
  functions: WasmFunction[];
  fns: Fn[];
  /** Made at the first job that asks for more than one thread. */
  helpers?: WasmHelperThreads;
}

export interface ThreadedKernel {
  /** Whether the functions run over the current backend's memory (false on another backend). */
  available(): boolean;
  /** Helper threads ready to take work (0 before the first threaded job). */
  helpersReady(): number;
  /**
   * Run items [0, items) of the driver over the current wasm memory, on `threads` threads where the
   * memory is shared and the job has `macs` multiply-adds or more than the wake-up is worth (the
   * first threaded call fixes the count); false on another backend (nothing was run).
   */
  run(params: number[], items: number, macs: number, threads: number): boolean;
}

/**
 * Hand-written functions and their driver, instantiated once per wasm memory, with helper threads
 * where it is shared. `chunksPerThread`: how finely the threads share a job from the counter. More
 * chunks balance better, but a driver whose every call walks all of its input (the filter
 * gradient's, over every output row) pays that walk again per chunk: such a driver takes 1, which
 * still lets the main thread take the helper's chunk when the helper has not started on it yet.
 */
export function threadedKernel(build: () => WasmFunction[], driver: Driver, chunksPerThread = 4): ThreadedKernel {
  const made = new WeakMap<WebAssembly.Memory, Made | null>();
  const over = (memory: WebAssembly.Memory): Made | null => {
    if (!made.has(memory)) {
      const functions = build();
      const exports = instantiateOver(memory, functions);
      made.set(memory, exports ? { functions, fns: functions.map((f) => exports[f.name] as Fn) } : null);
    }
    return made.get(memory) ?? null;
  };
  return {
    available: () => {
      const memory = wasmBackendMemory();
      return memory !== null && over(memory) !== null;
    },
    helpersReady: () => {
      const memory = wasmBackendMemory();
      return (memory && made.get(memory)?.helpers?.ready()) || 0;
    },
    run: (params, items, macs, threads) => {
      const memory = wasmBackendMemory();
      const k = memory && over(memory);
      if (!memory || !k) return false;
      if (!k.helpers && threads > 1 && isShared(memory)) {
        const names = k.functions.map((f) => f.name);
        k.helpers = new WasmHelperThreads(threads - 1, memory, moduleBytes(k.functions, true), names, driver, k.fns, chunksPerThread);
      }
      if (k.helpers && threads > 1 && macs >= MIN_THREADED_MACS) k.helpers.run(params, items);
      else driver(k.fns, Int32Array.from(params), 0, items);
      return true;
    },
  };
}
