/**
 * The one import of TensorFlow.js: tfjs-core's API, its gradients and chained ops, and the cpu
 * backend; every module imports tf from here. The `@tensorflow/tfjs` union package would also load
 * layers, converter, data and webgl, none of which fedslice uses (they were most of a role's
 * start-up). The wasm and tfjs-node backends are loaded when chosen (compute/backend.ts).
 */
import '@tensorflow/tfjs-core';
import './tfjs-gradients.ts';
import '@tensorflow/tfjs-backend-cpu';

export * from '@tensorflow/tfjs-core';
