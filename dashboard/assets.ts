/**
 * The files the dashboard serves, named here and nowhere else: its own page files and the
 * browser builds of vega, vega-lite and vega-embed from the installed packages (nothing from a
 * CDN: the page works offline). A request names an entry of this table, never a path.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { PACKAGE_ROOT, packagePath } from '../core/package-root.ts';

export interface Asset {
  file: string;
  type: string;
}

// read from the sources' folder also when the CLI runs from its build (dist/)
const page = (name: string, type: string): Asset => ({ file: packagePath('dashboard', 'page', name), type });

/** Where Node would find an installed package from our root: the nearest node_modules/<name>. */
function packageDir(name: string): string {
  for (let dir = PACKAGE_ROOT; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dirname(dir) === dir) throw new Error(`the dashboard needs the package ${name}: run npm install`);
  }
}

const JS = 'text/javascript; charset=utf-8';

/** URL path -> file. */
export function assetTable(): Map<string, Asset> {
  return new Map([
    ['/', page('index.html', 'text/html; charset=utf-8')],
    ['/run', page('run.html', 'text/html; charset=utf-8')],
    ['/assets/style.css', page('style.css', 'text/css; charset=utf-8')],
    ['/assets/common.js', page('common.js', JS)],
    ['/assets/overview.js', page('overview.js', JS)],
    ['/assets/run.js', page('run.js', JS)],
    ['/assets/vega.min.js', { file: join(packageDir('vega'), 'build', 'vega.min.js'), type: JS }],
    ['/assets/vega-lite.min.js', { file: join(packageDir('vega-lite'), 'build', 'vega-lite.min.js'), type: JS }],
    ['/assets/vega-embed.min.js', { file: join(packageDir('vega-embed'), 'build', 'vega-embed.min.js'), type: JS }],
  ]);
}
