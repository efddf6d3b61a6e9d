// The pthread worker of tfjs-backend-wasm's threaded build, from a file Node can start (core/compute/wasm-threads.ts).
// tfjs hands emscripten this worker and the main script as blob: URLs, which Node's worker_threads
// and the worker's importScripts (fs.readFileSync) cannot open: here the main script is read from disk.
'use strict';
const { parentPort } = require('node:worker_threads');

const mainScript = require.resolve('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.js');
const { wasmWorkerContents } = require('@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js');

const on = parentPort.on.bind(parentPort);
parentPort.on = (event, listener) =>
  on(event, event !== 'message' ? listener : (data) => {
    if (data && data.cmd === 'load' && typeof data.urlOrBlob !== 'string') data.urlOrBlob = mainScript;
    listener(data);
  });
// direct eval: the emscripten worker code expects this module's require and __filename in scope;
// its one "\n" is a real newline in the exported template string, escaped back as tfjs does for its blob
eval(wasmWorkerContents.replace(/\n/g, '\\n'));
