/**
 * Latency and memory per configuration, from the per-trainer figures of the round records
 * (training rounds of finished runs), summed up by the same rule as a run's profile
 * (core/results/trainer-summary.ts).
 */
import type { ColumnTable } from 'arquero';
import type { TrainerRoundFigures } from '../core/results/types.ts';
import { type TrainerSummary, summarizeTrainerFigures } from '../core/results/trainer-summary.ts';
import { type ConfigKey, pickConfig } from '../core/results/schema.ts';
import { finishedRounds } from './tables.ts';

export interface TrainerFiguresRow extends ConfigKey, TrainerSummary {
  config: string;
}

interface RoundRow extends ConfigKey {
  config: string;
  trainers: TrainerRoundFigures[] | null;
  mergeSeconds: number;
  evalSeconds: number;
  aggregatorPeakRssBytes: number | null;
}

function isRoundRow(r: object): r is RoundRow {
  return 'config' in r && 'trainers' in r && 'mergeSeconds' in r && 'evalSeconds' in r;
}

/** One row per configuration whose finished runs carry trainer figures, in configuration order. */
export function trainerFiguresTable(rounds: ColumnTable): TrainerFiguresRow[] {
  const rows = finishedRounds(rounds)
    .filter((d: { round: number; trainers: unknown }) => d.round >= 1 && d.trainers !== null)
    .objects()
    .filter(isRoundRow);
  const byConfig = new Map<string, RoundRow[]>();
  for (const r of rows) byConfig.set(r.config, [...(byConfig.get(r.config) ?? []), r]);
  return [...byConfig.keys()].sort().flatMap((config) => {
    const list = byConfig.get(config) ?? [];
    const s = summarizeTrainerFigures(list);
    return s ? [{ ...pickConfig(list[0]), config, ...s }] : [];
  });
}
