/**
 * How the analysis shows the key fields of the results store. The fields themselves, their kinds,
 * labels and the columns a configuration is grouped by come from the results schema
 * (core/results/schema.ts); a configuration is a run key minus its seed.
 */
import { ALWAYS_SHOWN, CONFIG_FIELDS, type ConfigField, type ConfigKey, FIELD_LABELS, type KeyField, fieldDisplay, fieldKind } from '../core/results/schema.ts';

/** Learning rates the way people write them: 1e-4, 3e-4, 2.5e-5, 0.1. */
export function formatLearningRate(lr: number): string {
  if (lr === 0) return '0';
  if (Math.abs(lr) >= 0.01) return String(Number(lr.toPrecision(6)));
  const [mantissa, exponent] = lr.toExponential().split('e');
  return `${Number(Number(mantissa).toPrecision(6))}e${Number(exponent)}`;
}

export function formatFieldValue(field: KeyField, v: unknown): string {
  if (fieldDisplay(field) === 'rate' && typeof v === 'number') return formatLearningRate(v);
  if (typeof v === 'boolean') return v ? 'yes' : 'no';
  return String(v);
}

/** Config fields that take more than one value in these rows, plus the ones always shown. */
export function shownConfigFields(rows: readonly ConfigKey[]): ConfigField[] {
  return CONFIG_FIELDS.filter((f) => ALWAYS_SHOWN.has(f) || new Set(rows.map((r) => String(r[f]))).size > 1);
}

/**
 * A short human label of a configuration over the shown fields: "W=2 lr=1e-4 swap". A switch
 * reads as its label or "no <label>", a named choice (mode, dataset) as its value alone.
 */
export function configLabel(k: ConfigKey, shown: readonly ConfigField[]): string {
  return shown
    .map((f) => {
      const v = k[f];
      if (typeof v === 'boolean') return v ? FIELD_LABELS[f] : `no ${FIELD_LABELS[f]}`;
      if (fieldKind(f) === 'string') return String(v);
      return `${FIELD_LABELS[f]}=${formatFieldValue(f, v)}`;
    })
    .join(' ');
}
