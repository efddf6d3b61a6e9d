/**
 * Where a training step's CPU goes by thread: the main thread (JS, tfjs dispatch, and its own share
 * of every kernel) against all other threads (our kernels' helper threads, tfjs's pthread pool),
 * from /proc/self/task/<tid>/schedstat (ns on CPU; Linux only). On a quiet machine a step cannot
 * take less wall time than its main thread's CPU, so this shows how much of the step the second
 * core could still take. Best of --reps runs of --steps steps, by main-thread CPU.
 *
 *   FEDSLICE_WASM_THREADS=2 node --import tsx bench/thread-split.ts [--width 0.125] [--steps 5] [--reps 3]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { initBackend } from '../core/compute/backend.ts';
import { trainLocal } from '../core/training/train.ts';
import { benchTrainArgs } from './train-step.ts';

/** ns on CPU of the main thread and of all threads of this process. */
function threadCpu(): { main: number; all: number } {
  let all = 0;
  let main = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    let ns = 0;
    try {
      ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      continue; // a thread that ended meanwhile
    }
    all += ns;
    if (Number(tid) === process.pid) main = ns;
  }
  return { main, all };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { width: { type: 'string', default: '0.125' }, steps: { type: 'string', default: '5' }, reps: { type: 'string', default: '3' } } });
  const steps = Number(values.steps);
  const info = await initBackend('wasm');
  const loadBefore = loadavg()[0];
  let best = { main: Infinity, all: Infinity, wall: Infinity };
  for (let r = 0; r < Number(values.reps); r++) {
    const marks: Array<{ t: number; cpu: { main: number; all: number } }> = [];
    await trainLocal({ ...benchTrainArgs(Number(values.width), steps + 1), onProgress: () => marks.push({ t: performance.now(), cpu: threadCpu() }) });
    const [a, b] = [marks[0], marks[marks.length - 1]];
    const m = { main: (b.cpu.main - a.cpu.main) / 1e6 / steps, all: (b.cpu.all - a.cpu.all) / 1e6 / steps, wall: (b.t - a.t) / steps };
    if (m.main < best.main) best = m;
  }
  console.log(`backend ${info.name} (${info.detail}); width ${values.width}; best of ${values.reps} runs of ${steps} steps by main-thread CPU; load ${loadBefore.toFixed(1)} -> ${loadavg()[0].toFixed(1)}`);
  console.log(`ms per step: main thread ${best.main.toFixed(1)}, other threads ${(best.all - best.main).toFixed(1)}, all ${best.all.toFixed(1)}, wall ${best.wall.toFixed(1)}`);
}

await main();
