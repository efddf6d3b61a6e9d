/**
 * The fields of the results store that identify a configuration, and how to show them.
 * A configuration is a run key minus its seed: seeds are replicates of one configuration.
 */
import type { RunKey } from '../core/results/types.ts';
import { keyName } from '../core/results/store.ts';

export type ConfigKey = Omit<RunKey, 'seed'>;

export const CONFIG_FIELDS = [
  'worldSize',
  'learningRate',
  'swap',
  'layerwiseSwap',
  'rounds',
  'mode',
  'dataset',
  'width',
] as const satisfies readonly (keyof ConfigKey)[];

export const KEY_FIELDS = [...CONFIG_FIELDS, 'seed'] as const satisfies readonly (keyof RunKey)[];

export type KeyField = (typeof KEY_FIELDS)[number];

export const NUMERIC_FIELDS: ReadonlySet<KeyField> = new Set(['worldSize', 'learningRate', 'rounds', 'width', 'seed']);
export const BOOLEAN_FIELDS: ReadonlySet<KeyField> = new Set(['swap', 'layerwiseSwap']);

/** Fields always shown in labels and tables even when they take a single value. */
export const ALWAYS_SHOWN: ReadonlySet<KeyField> = new Set(['worldSize', 'learningRate', 'swap']);

/** A stable, file-name-safe id of a configuration, like the run keys: ws2_lr0.0001_swap1_... */
export function configId(k: ConfigKey): string {
  // rows of the store carry their seed too; a configuration is named without it
  return keyName({ ...k, seed: undefined });
}

export function pickConfig(r: ConfigKey): ConfigKey {
  return {
    worldSize: r.worldSize,
    learningRate: r.learningRate,
    swap: r.swap,
    layerwiseSwap: r.layerwiseSwap,
    rounds: r.rounds,
    mode: r.mode,
    dataset: r.dataset,
    width: r.width,
  };
}

/** Learning rates the way people write them: 1e-4, 3e-4, 2.5e-5, 0.1. */
export function formatLearningRate(lr: number): string {
  if (lr === 0) return '0';
  if (Math.abs(lr) >= 0.01) return String(Number(lr.toPrecision(6)));
  const [mantissa, exponent] = lr.toExponential().split('e');
  return `${Number(Number(mantissa).toPrecision(6))}e${Number(exponent)}`;
}

/** Short names used in headers and labels. */
export const FIELD_LABELS: Record<KeyField, string> = {
  worldSize: 'W',
  learningRate: 'lr',
  swap: 'swap',
  layerwiseSwap: 'lw-swap',
  rounds: 'rounds',
  mode: 'mode',
  dataset: 'dataset',
  width: 'width',
  seed: 'seed',
};

export function formatFieldValue(field: KeyField, v: unknown): string {
  if (field === 'learningRate' && typeof v === 'number') return formatLearningRate(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

/** Config fields that take more than one value in these rows, plus the ones always shown. */
export function shownConfigFields(rows: readonly ConfigKey[]): (keyof ConfigKey)[] {
  return CONFIG_FIELDS.filter(
    (f) => ALWAYS_SHOWN.has(f) || new Set(rows.map((r) => String(r[f]))).size > 1,
  );
}

/** A short human label of a configuration over the shown fields: "W=2 lr=1e-4 swap". */
export function configLabel(k: ConfigKey, shown: readonly (keyof ConfigKey)[]): string {
  return shown
    .map((f) => {
      if (f === 'swap') return k.swap ? 'swap' : 'no swap';
      if (f === 'layerwiseSwap') return k.layerwiseSwap ? 'lw-swap' : 'no lw-swap';
      if (f === 'mode' || f === 'dataset') return String(k[f]);
      return `${FIELD_LABELS[f]}=${formatFieldValue(f, k[f])}`;
    })
    .join(' ');
}
