/**
 * The run key, declared once: the fields a run is known by in the results store, in the order of
 * its readable name (ws2_lr0.0001_swap1_lsw0_r10_seed42_slice_cifar100_w1). Everything that names
 * key fields (the RunKey type, the key of a config, the key name, the configuration id, the
 * analysis columns and labels, the chart series) is derived from this list in schema.ts, so adding
 * a field here is all it takes to keep its configurations apart everywhere.
 *
 * Per field:
 * - kind: the type of its value in records;
 * - from: its dotted path in the experiment config (checked against the config's type);
 * - label: the short name in table headers and chart labels;
 * - token: the prefix of its value in the key name ('' = the value alone; booleans are 1/0);
 * - display 'rate': shown as 1e-4 rather than 0.0001;
 * - alwaysShown: in tables and labels even when every row has the same value;
 * - role 'replicate': runs that differ only here are one configuration (the seed);
 *   role 'scale': the axis that scaling curves follow (the world size);
 * - inertAtOneTrainer: does nothing with a single trainer, so a W=1 baseline may differ here;
 * - default: for a field added after stores were written: records without it are read with this
 *   value, and a key name leaves the field out at this value, so the keys of existing runs stay.
 */
import type { ConfigPath } from './config-paths.ts';

export type KeyFieldKind = 'number' | 'boolean' | 'string';

export interface KeyFieldSpec {
  readonly name: string;
  readonly kind: KeyFieldKind;
  readonly from: ConfigPath;
  readonly label: string;
  readonly token: string;
  readonly display?: 'rate';
  readonly alwaysShown?: true;
  readonly role?: 'replicate' | 'scale';
  readonly inertAtOneTrainer?: true;
  readonly default?: number | boolean | string;
}

export const KEY_SPEC = [
  { name: 'worldSize', kind: 'number', from: 'federation.worldSize', label: 'W', token: 'ws', alwaysShown: true, role: 'scale' },
  { name: 'learningRate', kind: 'number', from: 'train.learningRate', label: 'lr', token: 'lr', display: 'rate', alwaysShown: true },
  { name: 'swap', kind: 'boolean', from: 'federation.swap', label: 'swap', token: 'swap', alwaysShown: true, inertAtOneTrainer: true },
  { name: 'layerwiseSwap', kind: 'boolean', from: 'federation.layerwiseSwap', label: 'lw-swap', token: 'lsw', inertAtOneTrainer: true },
  { name: 'rounds', kind: 'number', from: 'federation.rounds', label: 'rounds', token: 'r' },
  { name: 'seed', kind: 'number', from: 'seed', label: 'seed', token: 'seed', role: 'replicate' },
  { name: 'mode', kind: 'string', from: 'federation.mode', label: 'mode', token: '' },
  { name: 'dataset', kind: 'string', from: 'dataset.name', label: 'dataset', token: '' },
  { name: 'width', kind: 'number', from: 'model.width', label: 'width', token: 'w' },
  { name: 'fraction', kind: 'number', from: 'dataset.fraction', label: 'fraction', token: 'f', default: 1 },
] as const satisfies readonly KeyFieldSpec[];
