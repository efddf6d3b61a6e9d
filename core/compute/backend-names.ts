/** The compute backends a config or --backend may name ('auto': the first that loads). */
export const BACKEND_NAMES = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;

export type BackendName = (typeof BACKEND_NAMES)[number];

export function isBackendName(v: string): v is BackendName {
  return BACKEND_NAMES.some((n) => n === v);
}

/** The environment variable that sets a process's wasm compute threads (the runner sets it per role). */
export const THREADS_ENV = 'FEDSLICE_WASM_THREADS';
/** The most threads a wasm backend is given. */
export const MAX_WASM_THREADS = 8;
