/**
 * The memory probe: with FEDSLICE_MEMORY_PROBE=FILE set, a role appends one JSON line to FILE at
 * each phase boundary of a round (bench/memory.ts reads them): resident memory now and its peak
 * since the previous boundary, V8's heap and external buffers, the wasm heap, and tfjs's tensors.
 * The peak is per phase because each mark resets the kernel's high-water mark (/proc/self/clear_refs),
 * so with the probe on, a process's overall peak is the largest of its lines, not its rusage.
 * Unset, a mark is one check of a constant.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import * as tf from './tf.ts';
import { wasmHeapBytes } from './tensor-views.ts';

export const MEMORY_PROBE_ENV = 'FEDSLICE_MEMORY_PROBE';

const file = process.env[MEMORY_PROBE_ENV] || null;

/** One line of the probe's file. */
export interface MemoryMark {
  /** Who wrote it: "trainer t0", "aggregator". */
  who: string;
  round: number;
  phase: string;
  /** Milliseconds since the epoch. */
  time: number;
  rssBytes: number;
  /** Peak resident memory since the previous mark of this process. */
  peakRssBytes: number;
  heapUsedBytes: number;
  /** Buffers outside V8's heap (received frames, typed arrays); the wasm heap is not among them. */
  arrayBuffersBytes: number;
  wasmHeapBytes: number | null;
  tensorBytes: number;
  tensorCount: number;
}

export function memoryProbeOn(): boolean {
  return file !== null;
}

/** Appends a mark when the probe is on; otherwise does nothing. */
export function markMemory(who: string, round: number, phase: string): void {
  if (file === null) return;
  const m = process.memoryUsage();
  const wasm = tf.getBackend() ? wasmHeapBytes() : null;
  const t = tf.getBackend() ? tf.memory() : { numBytes: 0, numTensors: 0 };
  const mark: MemoryMark = {
    who,
    round,
    phase,
    time: Date.now(),
    rssBytes: m.rss,
    peakRssBytes: Math.max(statusBytes('VmHWM') ?? m.rss, m.rss),
    heapUsedBytes: m.heapUsed,
    arrayBuffersBytes: m.arrayBuffers,
    wasmHeapBytes: wasm,
    tensorBytes: t.numBytes,
    tensorCount: t.numTensors,
  };
  appendFileSync(file, `${JSON.stringify(mark)}\n`);
  resetPeak();
}

function statusBytes(field: string): number | null {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : null;
}

function resetPeak(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux, or not allowed: each peak is then the process's peak so far
  }
}
