/**
 * Binary frames: a msgpack header and the tensors' raw float bytes (core/wire/frame.ts has the
 * layout). `decode` never throws: a frame is checked against the schema of the direction it arrived
 * on, and a bad one comes back as { ok: false, code, error } with one line naming the bad field.
 */
import type { z } from 'zod';
import { isErrorCode, type ErrorCode } from '../errors.ts';
import { FrameError, frameParts, joinParts, readFrame } from './frame.ts';
import { MESSAGE_TYPES, type Direction, type Message } from './schema.ts';

/** The bytes of one message in one buffer; a typed send (core/wire/socket.ts) sends its parts instead. */
export function encode(msg: Message): Uint8Array {
  return joinParts(frameParts(msg));
}

/** The pieces of one message's frame, tensors not copied (they are views over the message's data). */
export function encodeParts(msg: Message): Uint8Array[] {
  return frameParts(msg);
}

/** Any value in the frame layout: for tests and tools that must build frames a schema refuses. */
export function encodeUnchecked(value: unknown): Uint8Array {
  return joinParts(frameParts(value));
}

export type DecodeResult<M> = { ok: true; msg: M } | { ok: false; code: ErrorCode; error: string };

/**
 * A message that `direction` carries, or why the frame is not one. The frame may be one buffer or
 * the fragments it arrived in; tensors come back as views over those bytes where they are aligned.
 */
export function decode<S extends z.ZodType>(direction: Direction<S>, frame: Uint8Array | readonly Uint8Array[]): DecodeResult<z.output<S>> {
  let value: unknown;
  try {
    value = readFrame(frame instanceof Uint8Array ? [frame] : frame);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    return { ok: false, code: 'FEDSLICE_ERR_FRAME', error: e instanceof FrameError ? why : `not a msgpack frame (${why})` };
  }
  const type = typeof value === 'object' && value !== null && 'type' in value ? value.type : undefined;
  if (typeof type !== 'string' || !direction.types.has(type)) {
    const error =
      typeof type === 'string' && MESSAGE_TYPES.has(type)
        ? `a ${type} message does not travel from ${direction.name} (that carries ${[...direction.types].join(', ')})`
        : `unknown message type ${JSON.stringify(type)?.slice(0, 40)}`;
    return { ok: false, code: 'FEDSLICE_ERR_MESSAGE', error };
  }
  try {
    const r = direction.schema.safeParse(value, { error: phrase });
    if (r.success) return { ok: true, msg: r.data };
    return describe(type, r.error.issues[0]);
  } catch (e) {
    return { ok: false, code: 'FEDSLICE_ERR_MESSAGE', error: `${type}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

/** One line: where in the message (task.weights[3].data) and what is wrong there. */
function describe(type: string, issue: z.core.$ZodIssue): { ok: false; code: ErrorCode; error: string } {
  let where = type;
  for (const key of issue.path) where += typeof key === 'number' ? `[${key}]` : `.${String(key)}`;
  const code = issue.code === 'custom' && isErrorCode(issue.params?.code) ? issue.params.code : 'FEDSLICE_ERR_MESSAGE';
  return { ok: false, code, error: `${where} ${issue.message}` };
}

/** Wording of zod's issues for fields whose schema does not word its own (e.g. the train section). */
function phrase(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is missing';
      if (issue.expected === 'number') return 'must be a finite number';
      if (issue.expected === 'boolean') return 'must be true or false';
      if (issue.expected === 'array') return 'must be a list';
      return `must be ${/^[aeiou]/.test(issue.expected) ? 'an' : 'a'} ${issue.expected}`;
    case 'too_small':
      if (issue.origin === 'string') return 'must be a non-empty string';
      if (issue.origin === 'array') return `must have at least ${issue.minimum} entries`;
      return `must be ${issue.inclusive ? 'at least' : 'greater than'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${issue.maximum} characters`;
      if (issue.origin === 'array') return `must have at most ${issue.maximum} entries`;
      return `must be ${issue.inclusive ? 'at most' : 'less than'} ${issue.maximum}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map(String).join(', ')}`;
    case 'unrecognized_keys':
      return `has unknown fields ${issue.keys.join(', ')}`;
    default:
      return undefined;
  }
}

/** Frame limit for a model of `modelBytes`: the whole model plus room for the envelope. */
export function maxFrameBytes(modelBytes: number): number {
  return Math.ceil(modelBytes * 1.05) + (1 << 20);
}
