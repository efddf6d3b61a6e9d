/**
 * What the dashboard knows of a results store, kept up to date by reading only what writers
 * appended since the last look: every run record, every round record, and the step-log points of
 * the runs still running (the loss chart shows those; a finished run's points are let go, so a
 * long sweep's step log does not pile up in memory).
 */
import { tornLineWarnings } from '../core/results/jsonl.ts';
import { JsonLinesTail } from '../core/results/jsonl-tail.ts';
import { latestByRun } from '../core/results/latest.ts';
import { configId, keyFieldsOf, pickConfig } from '../core/results/schema.ts';
import { ResultsStore } from '../core/results/store.ts';
import type { RoundRecord, RunRecord } from '../core/results/types.ts';
import { StepPointSet, type StepRun } from '../analysis/steps.ts';

export interface StoreChanges {
  runs: boolean;
  rounds: boolean;
  steps: boolean;
}

export class LiveStore {
  readonly store: ResultsStore;
  private readonly runsTail: JsonLinesTail<RunRecord>;
  private readonly roundsTail: JsonLinesTail<RoundRecord>;
  private readonly stepsTail: JsonLinesTail<unknown>;
  runRecords: RunRecord[] = [];
  roundRecords: RoundRecord[] = [];
  /** Runs whose latest record says started: their step points are kept. */
  readonly running = new Map<string, StepRun>();
  steps = new StepPointSet(this.running);
  stepLines = 0;

  constructor(readonly dir: string) {
    this.store = new ResultsStore(dir);
    this.runsTail = new JsonLinesTail(this.store.runsPath);
    this.roundsTail = new JsonLinesTail(this.store.roundsPath);
    this.stepsTail = new JsonLinesTail(this.store.stepsPath);
  }

  /** Reads what writers appended since the last call; says which files brought something. */
  refresh(): StoreChanges {
    const runs = this.runsTail.read();
    if (runs.restarted) this.runRecords = [];
    this.runRecords.push(...runs.records);
    const rounds = this.roundsTail.read();
    if (rounds.restarted) this.roundRecords = [];
    this.roundRecords.push(...rounds.records);
    const runsChanged = runs.restarted || runs.records.length > 0;
    if (runsChanged) this.trackRunning();
    const steps = this.stepsTail.read();
    if (steps.restarted) {
      this.steps = new StepPointSet(this.running);
      this.stepLines = 0;
    }
    for (const s of steps.records) this.steps.add(s);
    this.stepLines += steps.records.length;
    return { runs: runsChanged, rounds: rounds.restarted || rounds.records.length > 0, steps: steps.restarted || steps.records.length > 0 };
  }

  /** The latest record of each run id, in the order the runs started. */
  latestRuns(): Map<string, RunRecord> {
    return latestByRun(this.runRecords.filter((r) => typeof r?.runId === 'string'));
  }

  /** Torn and unparsable lines of the three files, as the analysis words them. */
  tornWarnings(): string[] {
    return [this.runsTail, this.roundsTail, this.stepsTail].flatMap((t) => tornLineWarnings(t.path.slice(this.dir.length + 1), t.torn));
  }

  private trackRunning(): void {
    const latest = this.latestRuns();
    for (const id of [...this.running.keys()]) {
      if (latest.get(id)?.status !== 'started') {
        this.running.delete(id);
        this.steps.points.delete(id);
      }
    }
    for (const r of latest.values()) {
      const key = keyFieldsOf(r.keyFields);
      if (r.status === 'started' && key && !this.running.has(r.runId)) this.running.set(r.runId, { runId: r.runId, config: configId(key), key: pickConfig(key), seed: key.seed });
    }
  }
}
