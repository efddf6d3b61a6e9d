#!/usr/bin/env node
// Entry point: runs the build in dist/ (made by npm install, see bin/build.js) while it is newer
// than every source, otherwise the TypeScript sources themselves through tsx (compiled at start).
import { buildIsCurrent } from './build.js';

if (buildIsCurrent()) {
  await import('../dist/cli.js');
} else {
  if (process.stderr.isTTY) {
    process.stderr.write('fedslice: dist/ is missing or older than the sources; running them through tsx (slower start; npm run build remakes it)\n');
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import('../cli.ts');
}
