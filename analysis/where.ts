/**
 * `--where worldSize=2,swap=true`: keep the rows whose key fields match every pair.
 * A value may list alternatives with '|' (learningRate=1e-4|1e-3).
 */
import * as aq from 'arquero';
import type { ColumnTable } from 'arquero';
import { FedsliceError } from '../core/errors.ts';
import { BOOLEAN_FIELDS, KEY_FIELDS, type KeyField, NUMERIC_FIELDS, isKeyField } from '../core/results/schema.ts';

export type WhereValue = number | string | boolean;
export interface WhereClause {
  field: KeyField;
  values: WhereValue[];
}

export function parseWhere(text: string): WhereClause[] {
  const valid = `valid keys: ${KEY_FIELDS.join(', ')}`;
  const bad = (msg: string) => new FedsliceError('FEDSLICE_ERR_WHERE', `--where ${JSON.stringify(text)}: ${msg}`);
  return text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw bad(`"${pair}" is not key=value; ${valid}`);
      const key = pair.slice(0, eq).trim();
      const raw = pair.slice(eq + 1).trim();
      if (!isKeyField(key)) throw bad(`unknown key "${key}"; ${valid}`);
      const field = key;
      const values = raw.split('|').map((v) => parseValue(field, v.trim(), (m) => bad(m)));
      return { field, values };
    });
}

function parseValue(field: KeyField, v: string, bad: (m: string) => Error): WhereValue {
  if (NUMERIC_FIELDS.has(field)) {
    const x = Number(v);
    if (v === '' || !Number.isFinite(x)) throw bad(`${field} needs a number, got "${v}"`);
    return x;
  }
  if (BOOLEAN_FIELDS.has(field)) {
    if (['true', '1', 'yes', 'on'].includes(v.toLowerCase())) return true;
    if (['false', '0', 'no', 'off'].includes(v.toLowerCase())) return false;
    throw bad(`${field} needs true or false, got "${v}"`);
  }
  if (v === '') throw bad(`${field} needs a value`);
  return v;
}

export function applyWhere(table: ColumnTable, clauses: readonly WhereClause[]): ColumnTable {
  let t = table;
  for (const c of clauses) {
    t = t.params({ field: c.field, values: c.values }).filter((d: any, $: any) => aq.op.includes($.values, d[$.field]));
  }
  return t;
}

export function describeWhere(clauses: readonly WhereClause[]): string {
  return clauses.map((c) => `${c.field}=${c.values.join('|')}`).join(', ');
}
