/**
 * Expands a sweep file into runs: the cartesian product of the grid (in the grid's key order)
 * applied to the base experiment by dotted paths, minus the runs that match a skip entry.
 * Every run is validated; one error names each bad run and field.
 */
import { ConfigError, parseExperiment, type Experiment, type SweepFile } from '../core/config.ts';
import { alexnetLayers } from '../core/model/spec.ts';
import { runKey } from '../core/results/schema.ts';
import { checkSliceable } from '../core/model/slice-plan.ts';

export type GridValue = number | string | boolean;

export interface PlannedRun {
  index: number;
  key: string;
  config: Experiment;
  /** The grid values of this run, by dotted path. */
  point: Record<string, GridValue>;
}

function setPath(target: Record<string, unknown>, path: string, value: GridValue): void {
  const parts = path.split('.');
  let o = target;
  for (const p of parts.slice(0, -1)) {
    const next = o[p];
    if (next === undefined) o[p] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next)) {
      throw new ConfigError(`sweep grid path ${path}: ${p} is not an object in the base experiment`);
    }
    o = o[p] as Record<string, unknown>;
  }
  o[parts.at(-1)!] = value;
}

function product(grid: [string, GridValue[]][]): Record<string, GridValue>[] {
  let points: Record<string, GridValue>[] = [{}];
  for (const [path, values] of grid) points = points.flatMap((p) => values.map((v) => ({ ...p, [path]: v })));
  return points;
}

const matches = (point: Record<string, GridValue>, config: Experiment, rule: Record<string, GridValue>) =>
  Object.entries(rule).every(([path, v]) => (path in point ? point[path] : getPath(config, path)) === v);

function getPath(o: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), o);
}

/** What would only fail once the run's processes start: better said for the whole grid up front. */
function checkRunnable(config: Experiment, where: string): void {
  if (config.federation.mode !== 'slice') return;
  try {
    checkSliceable(alexnetLayers(config.model), config.federation.worldSize);
  } catch (e) {
    throw new ConfigError(`${where}: ${(e as Error).message}`);
  }
}

export function expandSweep(sweep: SweepFile, source = 'sweep'): PlannedRun[] {
  const runs: PlannedRun[] = [];
  const errors: string[] = [];
  const seen = new Map<string, number>();
  for (const point of product(Object.entries(sweep.grid))) {
    const raw = structuredClone((sweep.base ?? {}) as Record<string, unknown>);
    try {
      for (const [path, v] of Object.entries(point)) setPath(raw, path, v);
      raw.name ??= sweep.name;
      const where = `${source} run ${describePoint(point)}`;
      const config = parseExperiment(raw, where);
      if (sweep.skip.some((rule) => matches(point, config, rule))) continue;
      checkRunnable(config, where);
      const key = runKey(config);
      if (seen.has(key)) throw new ConfigError(`${source}: runs ${seen.get(key)} and ${runs.length} are the same experiment (${key}); remove the duplicate grid value`);
      seen.set(key, runs.length);
      runs.push({ index: runs.length, key, config, point });
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e.message);
    }
  }
  if (errors.length) throw new ConfigError(errors.length === 1 ? errors[0] : `${errors.length} runs are invalid; first: ${errors[0]}`);
  return runs;
}

export function describePoint(point: Record<string, GridValue>): string {
  const entries = Object.entries(point);
  if (!entries.length) return '(base)';
  return entries.map(([k, v]) => `${k.split('.').at(-1)}=${v}`).join(' ');
}
