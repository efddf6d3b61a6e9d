/**
 * The one import of TensorFlow.js: tfjs-core's API, its gradients and chained ops; every module
 * imports tf from here. The `@tensorflow/tfjs` union package would also load layers, converter,
 * data and webgl, none of which fedslice uses (they were most of a role's start-up). Every
 * backend, cpu included, is loaded when chosen (compute/backend.ts): a role on wasm never uses
 * the cpu backend, whose load cost it 20-25 ms of CPU.
 */
import '@tensorflow/tfjs-core';
import './tfjs-gradients.ts';

export * from '@tensorflow/tfjs-core';
