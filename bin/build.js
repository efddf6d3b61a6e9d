#!/usr/bin/env node
/**
 * The build of the CLI: cli.ts and every source it imports, bundled by esbuild into dist/, split
 * at each lazy import so that a command loads only what it uses (packages stay in node_modules).
 * `npm install` makes it (the prepare script) and `npm test` remakes it. bin/fedslice.js runs
 * dist/ only while buildIsCurrent() holds, so an edited checkout always runs its own sources.
 *
 *   node bin/build.js
 */
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
// What a build was made from (every source file it read, and this script) and when it started.
const STAMP = 'build.json';

/** True when `out` holds a build that started after the last change to every file it was made from. */
export function buildIsCurrent(root = ROOT, out = join(root, 'dist')) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(out, STAMP), 'utf8'));
  } catch {
    return false;
  }
  try {
    return stamp.inputs.every((f) => statSync(join(root, f)).mtimeMs < stamp.startedAt);
  } catch {
    return false; // a source was moved or deleted
  }
}

/**
 * In the build, core/compute/tfjs-gradients.ts becomes tfjs-core's own gradient and chained-op
 * registrations, bundled (tfjs-core ships them only as ES modules Node cannot load itself), so a
 * role does not load the `@tensorflow/tfjs` union package to get them.
 */
const TFJS_CORE_DIST = /^@tensorflow\/tfjs-core\/dist\//;
const tfjsGradients = {
  name: 'tfjs-gradients',
  setup(b) {
    b.onLoad({ filter: /[\\/]core[\\/]compute[\\/]tfjs-gradients\.ts$/ }, () => ({
      contents: "import '@tensorflow/tfjs-core/dist/register_all_gradients.js';\nimport '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';\n",
      loader: 'js',
      resolveDir: ROOT,
    }));
    // bundled, not left to Node as the other packages are (packages: 'external')
    b.onResolve({ filter: TFJS_CORE_DIST }, (args) => ({ path: createRequire(join(ROOT, 'package.json')).resolve(args.path) }));
  },
};

/**
 * Node imports a CommonJS package into an ES module at a high price: it parses the source once to
 * detect its format and once more to find its export names, before compiling it (tfjs-core,
 * its backends, ws, commander: about 3x the time of a require, bench/sweep-overhead.ts). So the
 * build loads every external package that is not an ES module (no "type": "module") with require.
 */
const requireFrom = createRequire(join(ROOT, 'package.json'));
const packageName = (specifier) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
function isCommonJsPackage(specifier) {
  if (specifier.startsWith('node:') || specifier.startsWith('.')) return false;
  const name = packageName(specifier);
  // read directly: a package's "exports" may not list its package.json
  const file = (requireFrom.resolve.paths(name) ?? []).map((dir) => join(dir, name, 'package.json')).find((f) => existsSync(f));
  return file !== undefined && JSON.parse(readFileSync(file, 'utf8')).type !== 'module';
}
/**
 * Packages of many small files that a role loads at start are bundled in: Node's loader resolves,
 * reads and compiles each file one by one (for an ES module, asynchronously, and links it).
 * Importing zod and msgpackr (ES modules) cost 170-200 ms of CPU per process against 45-50 ms
 * bundled; requiring ws and commander 70-80 ms against 43-56 (best of 4, under load). Native
 * addons they may load at run time (ws's bufferutil, msgpackr's msgpackr-extract) stay in
 * node_modules; so do tfjs-core and its backends (one file each, and the wasm backend finds its
 * .wasm files beside its own) and the analysis packages, which load only in `fedslice analyze`.
 */
const BUNDLED_PACKAGES = new Set(['zod', 'msgpackr', 'ws', 'commander']);
const NATIVE_ADDONS = new Set(['bufferutil', 'utf-8-validate', 'msgpackr-extract']);
/**
 * zod's namespace carries every translation of its error messages (z.locales: half of its bundled
 * source, 370 KB that every process would compile); fedslice's messages are its own, in English, and
 * zod's English default is imported on its own (locales/en.js), so the collection is left out.
 */
const zodWithoutLocales = {
  name: 'zod-without-locales',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) => (/[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'zod-without-locales' } : undefined));
    b.onLoad({ filter: /.*/, namespace: 'zod-without-locales' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

const requireCommonJs = {
  name: 'require-commonjs',
  setup(b) {
    b.onResolve({ filter: /^[^.]/ }, (args) => {
      if (args.namespace === 'commonjs-package') return { path: args.path, external: true };
      if (args.path.startsWith('node:') || args.path.startsWith('/')) return undefined;
      if (BUNDLED_PACKAGES.has(packageName(args.path))) return undefined; // esbuild resolves and bundles it
      if (NATIVE_ADDONS.has(packageName(args.path))) return { path: args.path, external: true };
      return isCommonJsPackage(args.path) ? { path: args.path, namespace: 'commonjs-package' } : { path: args.path, external: true };
    });
    b.onLoad({ filter: /.*/, namespace: 'commonjs-package' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

/**
 * Bundles cli.ts into `out`, which must sit directly in the package root (the code finds the
 * package's own files one folder up, see core/package-root.ts). Returns how many sources it read.
 */
export async function build(out = join(ROOT, 'dist')) {
  const { build: esbuild } = await import('esbuild');
  const startedAt = Date.now();
  rmSync(out, { recursive: true, force: true });
  const result = await esbuild({
    absWorkingDir: ROOT,
    entryPoints: ['cli.ts'],
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    plugins: [tfjsGradients, zodWithoutLocales, requireCommonJs],
    // the require the CommonJS packages are loaded with (see requireCommonJs)
    banner: { js: "import { createRequire as __fedsliceCreateRequire } from 'node:module';\nconst require = __fedsliceCreateRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'warning',
  });
  // the sources on disk: not the packages, nor the plugins' stand-ins ("namespace:path")
  const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.startsWith('node_modules/') && !/^[a-z-]+:/.test(f));
  inputs.push(relative(ROOT, fileURLToPath(import.meta.url)));
  // written last: a process that starts mid-build finds no stamp and runs the sources
  writeFileSync(join(out, STAMP), `${JSON.stringify({ startedAt, inputs }, null, 1)}\n`);
  return inputs.length;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  const n = await build();
  process.stderr.write(`fedslice: built dist/ from ${n} sources in ${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
}
