/**
 * TensorFlow.js backend choice: tensorflow-gpu > tensorflow > wasm (SIMD) > cpu, or a forced one.
 * The choice is printed once to stderr; on wasm the conv-gradient kernels are registered.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from './tf.ts';
import type { BackendName } from '../config.ts';
import { THREADS_ENV } from './backend-names.ts';
import { FedsliceError } from '../errors.ts';
import { registerConvGradKernels } from './conv-grad-kernels.ts';
import { registerWasmAdd, registerWasmMulSub } from './binary-kernel.ts';
import { registerWasmConv2D } from './conv-forward-kernel.ts';
import { registerWasmReluGrad } from './relu-grad-kernel.ts';
import { registerWasmRelu } from './relu-kernel.ts';
import { registerWasmIdentity } from './identity-kernel.ts';
import { registerWasmMatMul } from './matmul-kernel.ts';
import { registerWasmMaxPoolGrad } from './maxpool-grad-kernel.ts';
import { registerWasmMaxPool } from './maxpool-kernel.ts';
import { registerWasmSum } from './sum-kernel.ts';
import { requestedWasmThreads, sizePthreadPool, unrefWasmWorkers, withWasmThreads } from './wasm-threads.ts';

export type ChosenBackend = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';

export interface BackendInfo {
  name: ChosenBackend;
  detail: string;
  tfjsVersion: string;
  /** Compute threads this process uses; null where the backend picks them itself (tfjs-node). */
  threads: number | null;
}

type Tried = string | { detail: string; threads: number | null };

let current: BackendInfo | null = null;
let printed: ChosenBackend | null = null;

export function currentBackend(): BackendInfo | null {
  return current;
}

const NODE_PACKAGES = { 'tensorflow-gpu': '@tensorflow/tfjs-node-gpu', tensorflow: '@tensorflow/tfjs-node' } as const;

/** Why a tfjs-node package cannot load, or null when its native binding is present. */
export function nativeBindingProblem(pkg: string): string | null {
  let root: string;
  try {
    root = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    return `${pkg} is not installed`;
  }
  const lib = join(root, 'lib');
  const found = existsSync(lib) && readdirSync(lib).some((d) => existsSync(join(lib, d, 'tfjs_binding.node')));
  return found ? null : `${pkg} has no native binding (tfjs_binding.node)`;
}

/** tfjs-node registers its kernels before it loads the binding, so a failed first try makes the second warn about duplicates. */
async function importQuietly(pkg: string): Promise<void> {
  const warn = console.warn;
  console.warn = (...a: unknown[]) => {
    if (!/is already registered/.test(String(a[0]))) warn(...a);
  };
  try {
    await import(pkg);
  } finally {
    console.warn = warn;
  }
}

async function tryNode(which: 'tensorflow-gpu' | 'tensorflow'): Promise<Tried> {
  const pkg = NODE_PACKAGES[which];
  const problem = nativeBindingProblem(pkg);
  if (problem) return problem;
  try {
    await importQuietly(pkg);
    if (!(await tf.setBackend('tensorflow'))) return `${pkg} loaded but its backend did not initialise`;
    return { detail: pkg, threads: null };
  } catch (e) {
    return `${pkg} failed to load: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
  }
}

async function tryWasm(): Promise<Tried> {
  const asked = requestedWasmThreads();
  if (typeof asked === 'string') throw new FedsliceError('FEDSLICE_ERR_BACKEND', asked);
  try {
    sizePthreadPool();
    // a CommonJS package: its default export is the package itself, under Node and in the build alike
    const { default: wasm } = await import('@tensorflow/tfjs-backend-wasm');
    if (!(await withWasmThreads(asked, wasm.setThreadsCount, () => tf.setBackend('wasm')))) return 'the wasm backend did not initialise';
    unrefWasmWorkers();
    const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
    const threads = wasm.getThreadsCount();
    const threadText = threads > 1 ? `${threads} threads` : `1 thread${asked > 1 ? ` (${asked} asked)` : ''}`;
    return { detail: `${simd ? 'simd' : 'no simd'}, ${threadText}`, threads };
  } catch (e) {
    return `@tensorflow/tfjs-backend-wasm failed to load: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
  }
}

async function tryCpu(): Promise<Tried> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) return 'the cpu backend did not initialise';
  // the cpu backend otherwise prints a multi-line "install tfjs-node" banner on first use
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return { detail: 'pure JavaScript', threads: 1 };
}

const TRY: Record<ChosenBackend, () => Promise<Tried>> = {
  'tensorflow-gpu': () => tryNode('tensorflow-gpu'),
  tensorflow: () => tryNode('tensorflow'),
  wasm: tryWasm,
  cpu: tryCpu,
};
const AUTO_ORDER: ChosenBackend[] = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'];

/**
 * Select the backend: 'auto' takes the first that loads in AUTO_ORDER; a named one must load or
 * it is an error. Calling again with the same request (or 'auto' once chosen) changes nothing.
 */
export async function initBackend(requested: BackendName): Promise<BackendInfo> {
  if (current && (requested === 'auto' || requested === current.name)) return current;
  const candidates = requested === 'auto' ? AUTO_ORDER : [requested];
  const failures: string[] = [];
  for (const name of candidates) {
    const r = await TRY[name]();
    if (typeof r === 'string') {
      failures.push(r);
      continue;
    }
    await tf.ready();
    // on cpu they stay opt-in (registerConvGradKernels('cpu')): its own kernels are the reference they are tested against
    if (name === 'wasm') {
      registerConvGradKernels('wasm');
      registerWasmConv2D();
      registerWasmReluGrad();
      registerWasmRelu();
      registerWasmAdd();
      registerWasmMulSub();
      registerWasmMatMul();
      registerWasmMaxPoolGrad();
      registerWasmMaxPool();
      registerWasmSum();
      registerWasmIdentity();
    }
    current = { name, detail: r.detail, tfjsVersion: tf.version_core, threads: r.threads };
    if (printed !== name) {
      const budget = name !== 'wasm' ? '' : process.env[THREADS_ENV] === undefined ? '; every core' : `; ${THREADS_ENV}=${process.env[THREADS_ENV]}`;
      process.stderr.write(`fedslice: backend ${name} (${r.detail}${budget})\n`);
      printed = name;
    }
    return current;
  }
  if (requested === 'auto') {
    throw new FedsliceError('FEDSLICE_ERR_BACKEND', `no TensorFlow.js backend could load (${failures.join('; ')}); reinstall the dependencies with npm install`);
  }
  throw new FedsliceError(
    'FEDSLICE_ERR_BACKEND',
    `backend '${requested}' cannot load: ${failures.join('; ')}; install it or choose another with --backend (auto, wasm, cpu)`,
  );
}
