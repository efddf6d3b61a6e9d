/** What a run ran on, recorded with every run. */
import { hostname, platform, arch } from 'node:os';
import { readFileSync } from 'node:fs';
import { packagePath } from '../package-root.ts';
import type { RunEnvironment } from './types.ts';

const ownVersion = (() => {
  try {
    return (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

export function fedsliceVersion(): string {
  return ownVersion;
}

export function runEnvironment(backend: { name: string; tfjsVersion: string; threads: number | null }): RunEnvironment {
  return {
    backend: backend.name,
    threads: backend.threads,
    node: process.version,
    tfjs: backend.tfjsVersion,
    fedslice: ownVersion,
    host: hostname(),
    platform: `${platform()}-${arch()}`,
  };
}

/** This process's peak resident set size so far, in bytes (the kernel's high-water mark). */
export function peakRssBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}
