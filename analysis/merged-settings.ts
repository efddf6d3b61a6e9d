/**
 * The tables group runs by their key fields (a configuration = a run key minus its seed). Runs
 * that share key fields but differ in other settings (epochs, async mixing, stragglers, data
 * fraction...) would be averaged together as if they were seeds; this finds such settings so the
 * user is told which ones, instead of reading a silently merged mean.
 */
import type { RunRecord } from '../core/results/types.ts';
import { KEY_PATHS, configId, isNeutralSetting } from '../core/results/schema.ts';

export function mergedSettingsWarnings(runs: readonly RunRecord[]): string[] {
  const byConfig = new Map<string, Map<string, Set<string>>>();
  for (const r of runs) {
    if (!r.config) continue;
    const id = configId(r.keyFields);
    const paths = byConfig.get(id) ?? new Map<string, Set<string>>();
    byConfig.set(id, paths);
    for (const [path, value] of flatten(r.config)) {
      // key fields are equal within a configuration or are its replicate axis (the seed)
      if (isNeutralSetting(path) || KEY_PATHS.has(path)) continue;
      const values = paths.get(path) ?? new Set<string>();
      values.add(value);
      paths.set(path, values);
    }
  }
  const out: string[] = [];
  for (const [id, paths] of byConfig) {
    const differing = [...paths].filter(([, v]) => v.size > 1).map(([p, v]) => `${p} (${[...v].join(' | ')})`);
    if (differing.length) {
      out.push(`configuration ${id} has runs that differ in ${differing.join(', ')}; the tables average them together: analyze them apart with --results or --where`);
    }
  }
  return out;
}

function flatten(v: unknown, prefix = ''): [string, string][] {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.entries(v as Record<string, unknown>).flatMap(([k, x]) => flatten(x, prefix ? `${prefix}.${k}` : k));
  }
  return [[prefix, JSON.stringify(v)]];
}
