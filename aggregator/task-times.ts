/**
 * Local training time per task, by trainer slot: the parameter-server studies' "time per epoch,
 * min/avg/max over workers" (a task is `train.epochs` local epochs). Counts this process only.
 */
import type { TaskSeconds } from '../core/results/summary.ts';

export class TaskTimes {
  private readonly bySlot = new Map<number, { sum: number; n: number }>();

  add(slot: number, seconds: number): void {
    const t = this.bySlot.get(slot) ?? { sum: 0, n: 0 };
    t.sum += seconds;
    t.n++;
    this.bySlot.set(slot, t);
  }

  /** Min, mean and max over slots of each slot's mean seconds per task. */
  summary(): Partial<TaskSeconds> {
    const means = [...this.bySlot.values()].map((t) => t.sum / t.n);
    if (means.length === 0) return {};
    return {
      taskSecondsMin: Math.min(...means),
      taskSecondsMean: means.reduce((a, b) => a + b, 0) / means.length,
      taskSecondsMax: Math.max(...means),
    };
  }
}
