/**
 * Dotted paths into the experiment config ('federation.worldSize'), checked against its type, and
 * the value at one: how the results schema says where a key field or a setting lives.
 */
import type { Experiment } from '../config.ts';

type Paths<T> = T extends readonly unknown[]
  ? never
  : T extends object
    ? { [K in keyof T & string]-?: K | `${K}.${Paths<NonNullable<T[K]>>}` }[keyof T & string]
    : never;

/** Every dotted path of the experiment config, down to its leaves. */
export type ConfigPath = Paths<Experiment>;

/** The type of the value at a dotted path of T. */
export type ValueAt<T, P extends string> = P extends `${infer Head}.${infer Rest}`
  ? Head extends keyof T
    ? ValueAt<NonNullable<T[Head]>, Rest>
    : never
  : P extends keyof T
    ? T[P]
    : never;

/** The value at a dotted path, or undefined where the path leaves the object. */
export function valueAt(root: unknown, path: string): unknown {
  let v = root;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = Reflect.get(v, part);
  }
  return v;
}
