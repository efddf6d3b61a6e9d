/**
 * What identifies a run, derived from the key fields declared in key-fields.ts: the RunKey type,
 * the key of a config, its readable name, the configuration id (the key minus its seed), the
 * columns and labels the analysis groups and shows by, and the chart series. Also the one list of
 * settings that do not change what a run computes, shared by the run key's config hash and the
 * analysis warning about runs merged into one configuration.
 */
import { createHash } from 'node:crypto';
import type { Experiment } from '../config.ts';
import { type ConfigPath, type ValueAt, valueAt } from './config-paths.ts';
import { KEY_SPEC, type KeyFieldKind, type KeyFieldSpec } from './key-fields.ts';

type Spec = (typeof KEY_SPEC)[number];
type ValueOfKind<K extends KeyFieldKind> = K extends 'number' ? number : K extends 'boolean' ? boolean : string;

export type KeyField = Spec['name'];
/** The fields a run is keyed by; the same key is never run twice unless asked. */
export type RunKey = { [S in Spec as S['name']]: ValueOfKind<S['kind']> };
type ReplicateField = Extract<Spec, { role: 'replicate' }>['name'];
export type ConfigField = Exclude<KeyField, ReplicateField>;
/** A configuration: a run key minus its seed; seeds are replicates of one configuration. */
export type ConfigKey = Omit<RunKey, ReplicateField>;

// Every field's config path holds a value of the field's kind; otherwise this names the field.
type Misdeclared = { [S in Spec as ValueAt<Experiment, S['from']> extends ValueOfKind<S['kind']> ? never : S['name']]: S['from'] };
({}) satisfies Record<keyof Misdeclared, never>;

type Field = KeyFieldSpec & { readonly name: KeyField };
type ConfigFieldSpec = Field & { readonly name: ConfigField };
const FIELDS: readonly Field[] = KEY_SPEC;
const isConfigField = (f: Field): f is ConfigFieldSpec => f.role !== 'replicate';
const CONFIG_SPECS = FIELDS.filter(isConfigField);

/** The configuration's fields, in key-name order: what the analysis groups runs by. */
export const CONFIG_FIELDS: readonly ConfigField[] = CONFIG_SPECS.map((f) => f.name);
/** Analysis columns: the configuration, then the replicate axis (the seed). */
export const KEY_FIELDS: readonly KeyField[] = [...CONFIG_FIELDS, ...FIELDS.filter((f) => !isConfigField(f)).map((f) => f.name)];
export const NUMERIC_FIELDS: ReadonlySet<KeyField> = new Set(FIELDS.filter((f) => f.kind === 'number').map((f) => f.name));
export const BOOLEAN_FIELDS: ReadonlySet<KeyField> = new Set(FIELDS.filter((f) => f.kind === 'boolean').map((f) => f.name));
/** Shown in tables and labels even when every row has the same value. */
export const ALWAYS_SHOWN: ReadonlySet<ConfigField> = new Set(CONFIG_SPECS.filter((f) => f.alwaysShown).map((f) => f.name));
/** The configuration without its scale axis (the world size): what a scaling line follows. */
export const SERIES_FIELDS: readonly ConfigField[] = CONFIG_SPECS.filter((f) => f.role !== 'scale').map((f) => f.name);
/** Fields that do nothing with a single trainer (swapping). */
export const INERT_AT_ONE_TRAINER: readonly ConfigField[] = CONFIG_SPECS.filter((f) => f.inertAtOneTrainer).map((f) => f.name);
/** Short names used in headers and labels. */
export const FIELD_LABELS: Readonly<Record<KeyField, string>> = byField((f) => f.label);
/** Where each key field lives in the experiment config. */
export const KEY_PATHS: ReadonlySet<string> = new Set(FIELDS.map((f) => f.from));

export function isKeyField(name: string): name is KeyField {
  return FIELDS.some((f) => f.name === name);
}

export function fieldKind(f: KeyField): KeyFieldKind {
  return specOf(f).kind;
}

export function fieldDisplay(f: KeyField): 'rate' | undefined {
  return specOf(f).display;
}

function specOf(name: KeyField): Field {
  const f = FIELDS.find((x) => x.name === name);
  if (!f) throw new Error(`${name} is not a run key field`);
  return f;
}

/** A record over the key fields; built field by field, which TypeScript cannot follow. */
function byField<V>(value: (f: Field) => V): Record<KeyField, V> {
  return Object.fromEntries(FIELDS.map((f) => [f.name, value(f)])) as Record<KeyField, V>;
}

/** The key fields that x lacks or holds with the wrong kind of value (old records, other tools). */
export function badKeyFields(x: unknown): KeyField[] {
  return FIELDS.filter((f) => typeof valueAt(x, f.name) !== f.kind).map((f) => f.name);
}

export function isRunKey(x: unknown): x is RunKey {
  return badKeyFields(x).length === 0;
}

/** x's key fields with the defaults of fields it lacks (records written before they were key fields). */
function withKeyDefaults(x: unknown): Record<string, unknown> {
  return Object.fromEntries(FIELDS.map((f) => [f.name, valueAt(x, f.name) ?? f.default]));
}

/** The key fields of a record as read from the store: defaults filled in; null when one is still missing or of the wrong kind. */
export function keyFieldsOf(x: unknown): RunKey | null {
  const key = withKeyDefaults(x);
  return isRunKey(key) ? key : null;
}

/** The key fields a stored record lacks (with no default) or holds with the wrong kind of value. */
export function badStoredKeyFields(x: unknown): KeyField[] {
  return badKeyFields(withKeyDefaults(x));
}

export function runKeyFields(c: Experiment): RunKey {
  const key = Object.fromEntries(FIELDS.map((f) => [f.name, valueAt(c, f.from)]));
  if (!isRunKey(key)) throw new Error(`the experiment config lacks run key field(s) ${badKeyFields(key).join(', ')}`);
  return key;
}

/** The configuration fields of a row that carries more (a run key, a table row). */
export function pickConfig(r: ConfigKey): ConfigKey {
  return Object.fromEntries(CONFIG_FIELDS.map((f) => [f, r[f]])) as ConfigKey;
}

/**
 * A readable, file-name-safe name for key fields, like the reference's log folders:
 * ws2_lr0.0001_swap1_lsw0_r10_seed42_slice_cifar100_w1.
 */
export function keyName(k: RunKey): string {
  return nameOf(k, FIELDS);
}

/** A stable, file-name-safe id of a configuration: the key name without the seed. */
export function configId(k: ConfigKey): string {
  return nameOf(k, CONFIG_SPECS);
}

/** The id of a scaling chart's line: the configuration without its world size. */
export function seriesId(k: ConfigKey): string {
  return SERIES_FIELDS.map((f) => String(k[f])).join('|');
}

function nameOf(k: Partial<RunKey>, fields: readonly Field[]): string {
  const atDefault = (f: Field) => f.default !== undefined && (k[f.name] === undefined || k[f.name] === f.default);
  return fields
    .filter((f) => !atDefault(f))
    .map((f) => `${f.token}${tokenValue(k[f.name])}`)
    .join('_');
}

function tokenValue(v: unknown): string {
  return typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
}

/**
 * Settings that do not change what a run computes (a path covers everything below it): left out
 * of the config hash of the run key, and not reported when runs of one configuration differ in
 * them. The timeout and quorum decide only whether a round waits or fails; the evaluation batch
 * only how the test set is chunked; log only what trainers report while they train.
 * dataset.dir is deliberately NOT here: the folder is the config's only handle on which data a
 * run reads (a synthetic set made with other classes, counts or seed; a different CIFAR copy), so
 * runs on different folders keep different keys and the merge warning names the folder. Moving
 * the data folder, or naming it by another path, therefore starts new keys.
 */
export const NEUTRAL_SETTINGS = [
  'name',
  'backend',
  'federation.roundTimeoutS',
  'federation.minTrainers',
  'eval.batchSize',
  'log',
] as const satisfies readonly ConfigPath[];

export function isNeutralSetting(path: string): boolean {
  return NEUTRAL_SETTINGS.some((n) => path === n || path.startsWith(`${n}.`));
}

/** Hash of everything that changes what a run computes (all but the neutral settings). */
export function configHash(c: Experiment): string {
  const canonical = JSON.stringify(meaningful(c, ''));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 8);
}

/** The config without its neutral settings, keys sorted at every level. */
function meaningful(v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x) => meaningful(x, path));
  if (v === null || typeof v !== 'object') return v;
  const sub = (k: string) => (path ? `${path}.${k}` : k);
  const kept = Object.entries(v)
    .filter(([k]) => !isNeutralSetting(sub(k)))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(kept.map(([k, x]) => [k, meaningful(x, sub(k))]));
}

/** The run's key: its key fields plus the hash of everything else that changes what it computes. */
export function runKey(c: Experiment): string {
  return `${keyName(runKeyFields(c))}_${configHash(c)}`;
}
