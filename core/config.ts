/**
 * The experiment and sweep config: one schema, parsed once at the edge. Defaults reproduce the
 * reference system; every bad field is named in one error message.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { FedsliceError } from './errors.ts';
import { BACKEND_NAMES, type BackendName } from './compute/backend-names.ts';

const positiveInt = z.number().int().positive();

export const DatasetSchema = z
  .object({
    name: z.enum(['cifar100', 'synthetic']).default('synthetic'),
    /** Folder holding train.bin and test.bin; defaults to data/<name>. */
    dir: z.string().optional(),
    /** Seeded subset of both splits, in (0, 1]. */
    fraction: z.number().gt(0).max(1).default(1),
    partition: z.enum(['contiguous', 'iid', 'dirichlet']).default('contiguous'),
    alpha: z.number().positive().default(0.5),
  })
  .strict();

export const ModelSchema = z
  .object({
    width: z.number().positive().max(1).default(1),
    numClasses: positiveInt.default(100),
    /** 'random' (PyTorch's default init), 'kaiming' (He init, see core/model/init.ts) or the path of a safetensors checkpoint to start from. */
    init: z.string().default('random'),
  })
  .strict();

/** Asynchronous federation (mode "async"); defaults are filled in by asyncSettings(). */
export const AsyncSchema = z
  .object({
    /** Server mixing weight: each update adds mixing x staleness weight x its delta (FedAsync's alpha). */
    mixing: z.number().gt(0).max(1).optional(),
    /** How an update's weight falls with staleness s = versions applied since its task was sent. */
    staleness: z
      .object({
        fn: z.enum(['constant', 'polynomial', 'hinge']).optional(),
        /** polynomial: (1 + s)^-a; hinge: 1 / (a (s - b) + 1) past s > b. */
        a: z.number().positive().optional(),
        /** hinge: staleness tolerated at full weight. */
        b: z.number().int().min(0).optional(),
      })
      .strict()
      .optional(),
    /** Apply the average of every K updates at once (FedBuff); 1 = apply each update on arrival. */
    bufferSize: positiveInt.optional(),
    /** Updates between evaluations (each becomes a round record); default worldSize. */
    evalEvery: positiveInt.optional(),
  })
  .strict();

/** A simulation knob: the trainer in `slot` takes `slowdown` times as long per task. */
export const StragglerSchema = z
  .object({
    slot: z.number().int().min(0),
    slowdown: z.number().min(1, { error: (iss) => `is ${String(iss.input)}; it must be at least 1` }),
  })
  .strict();

export const FederationSchema = z
  .object({
    worldSize: positiveInt.max(64).default(1),
    mode: z.enum(['slice', 'fedavg', 'async']).default('slice'),
    swap: z.boolean().default(false),
    layerwiseSwap: z.boolean().default(false),
    rounds: positiveInt.default(10),
    roundTimeoutS: z.number().positive().default(3600),
    /** Updates needed for a round to proceed after the timeout; defaults to worldSize. */
    minTrainers: positiveInt.optional(),
    async: AsyncSchema.optional(),
    stragglers: z.array(StragglerSchema).optional(),
  })
  .strict();

export const TrainSchema = z
  .object({
    optimizer: z.enum(['adam']).default('adam'),
    learningRate: z.number().min(0).default(1e-4),
    weightDecay: z.number().min(0).default(1e-4),
    batchSize: positiveInt.default(32),
    epochs: positiveInt.default(3),
    augment: z.boolean().default(true),
    /** Stop an epoch early after this many steps (for quick tests); unset = full passes. */
    maxStepsPerEpoch: positiveInt.optional(),
  })
  .strict();

export const EvalSchema = z
  .object({
    batchSize: positiveInt.default(500),
  })
  .strict();

/** What trainers report while they train; changes nothing a run computes. */
export const LogSchema = z
  .object({
    /** Steps between step-log points; unset = about 30 points per trainer and round. */
    everySteps: positiveInt.optional(),
  })
  .strict();

export const BackendSchema = z.enum(BACKEND_NAMES);

export const ExperimentSchema = z
  .object({
    name: z.string().default('experiment'),
    dataset: DatasetSchema.default(DatasetSchema.parse({})),
    model: ModelSchema.default(ModelSchema.parse({})),
    federation: FederationSchema.default(FederationSchema.parse({})),
    train: TrainSchema.default(TrainSchema.parse({})),
    eval: EvalSchema.default(EvalSchema.parse({})),
    log: LogSchema.default(LogSchema.parse({})),
    seed: z.number().int().min(0).default(123),
    backend: BackendSchema.default('auto'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const { worldSize, minTrainers } = c.federation;
    if (minTrainers !== undefined && minTrainers > worldSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['federation', 'minTrainers'],
        message: `is ${minTrainers} but worldSize is ${worldSize}; it must be at most worldSize`,
      });
    }
    const slots = new Set<number>();
    for (const [i, s] of (c.federation.stragglers ?? []).entries()) {
      if (s.slot >= worldSize) {
        ctx.addIssue({ code: 'custom', path: ['federation', 'stragglers', i, 'slot'], message: `is ${s.slot} but worldSize is ${worldSize}; slots are 0..${worldSize - 1}` });
      }
      if (slots.has(s.slot)) ctx.addIssue({ code: 'custom', path: ['federation', 'stragglers', i, 'slot'], message: `slot ${s.slot} is listed twice` });
      slots.add(s.slot);
    }
    if (c.federation.async && c.federation.mode !== 'async') {
      ctx.addIssue({ code: 'custom', path: ['federation', 'async'], message: `only applies to mode "async" (mode is "${c.federation.mode}"); remove it or set federation.mode to "async"` });
    }
    if (c.federation.mode === 'async' && (c.federation.swap || c.federation.layerwiseSwap)) {
      ctx.addIssue({ code: 'custom', path: ['federation', 'swap'], message: 'async mode trains full-model replicas; swap and layerwiseSwap apply to slice mode only' });
    }
  });

export type Experiment = z.infer<typeof ExperimentSchema>;
export type DatasetConfig = Experiment['dataset'];
export type ModelConfig = Experiment['model'];
export type FederationConfig = Experiment['federation'];
export type TrainConfig = Experiment['train'];
export type EvalConfig = Experiment['eval'];
export type LogConfig = Experiment['log'];
export type { BackendName };

const GridValue = z.union([z.number(), z.string(), z.boolean()]);
export const SweepSchema = z
  .object({
    name: z.string().min(1),
    base: z.unknown().default({}),
    /** Dotted paths into the experiment, each with the values to try. */
    grid: z.record(z.string(), z.array(GridValue).min(1)).default({}),
    /** A run matching every pair of one entry is left out. */
    skip: z.array(z.record(z.string(), GridValue)).default([]),
  })
  .strict();
export type SweepFile = z.infer<typeof SweepSchema>;

/** Thrown for bad input: one line naming what is wrong and what to do. */
export class ConfigError extends FedsliceError {
  constructor(message: string) {
    super('FEDSLICE_ERR_CONFIG', message);
  }
}

function describeIssues(source: string, error: z.ZodError): string {
  const parts = error.issues.map((i) => {
    const path = i.path.length ? i.path.join('.') : '(top level)';
    return `${path}: ${i.message}`;
  });
  return `${source}: invalid config: ${parts.join('; ')}`;
}

export function parseExperiment(raw: unknown, source = 'config'): Experiment {
  const r = ExperimentSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(describeIssues(source, r.error));
  return r.data;
}

export function parseSweep(raw: unknown, source = 'sweep'): SweepFile {
  const r = SweepSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(describeIssues(source, r.error));
  return r.data;
}

export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}; check the path`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

export function loadExperiment(path: string): Experiment {
  return parseExperiment(readJsonFile(path), path);
}

export function minTrainersOf(c: Experiment): number {
  return c.federation.minTrainers ?? c.federation.worldSize;
}

/** How much slower the trainer in `slot` runs (1 = as fast as it can). */
export function slowdownOf(c: Experiment, slot: number): number {
  return c.federation.stragglers?.find((s) => s.slot === slot)?.slowdown ?? 1;
}

/** The training recipe a task carries to the trainer in `slot`: the train section, the seed, its slowdown. */
export function taskHyperOf(c: Experiment, slot: number) {
  const slowdown = slowdownOf(c, slot);
  return { ...c.train, seed: c.seed, ...(slowdown > 1 ? { slowdown } : {}) };
}

export function datasetDir(d: DatasetConfig): string {
  return d.dir ?? `data/${d.name}`;
}
