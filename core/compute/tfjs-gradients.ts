/**
 * Registers tfjs's gradients (and its chained tensor methods), which tfjs-core leaves to whoever
 * imports it. tfjs-core ships them only as ES modules with extensionless imports, which Node cannot
 * load, so there are two ways in:
 * - the build (bin/build.js) replaces this module with tfjs-core's own registrations, bundled into
 *   dist/: what every role run through bin/fedslice.js uses;
 * - run from the sources (tsx, vitest), this module imports the union package, whose bundle
 *   registers the same gradients (and loads packages fedslice does not use: slower, same results).
 */
import '@tensorflow/tfjs';
