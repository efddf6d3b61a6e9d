/**
 * Files of the package found from its root folder. This module sits one folder below the root,
 * and so does every file of the build (dist/*.js), so one step up is the root in both.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const PACKAGE_ROOT = fileURLToPath(new URL('..', import.meta.url));

export function packagePath(...parts: string[]): string {
  return join(PACKAGE_ROOT, ...parts);
}
