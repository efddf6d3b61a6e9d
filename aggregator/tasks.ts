/**
 * What a trainer is sent (a task) and how its answer (an update) is checked against it. Both round
 * loops use these, so a task and its checks are written once.
 */
import { taskHyperOf, type Experiment } from '../core/config.ts';
import type { AggregationRule, Assignment } from '../core/aggregation/rules.ts';
import type { Weights } from '../core/model/tensor.ts';
import { checkUpdateContent } from '../core/wire/checks.ts';
import type { MessageOf } from '../core/wire/schema.ts';
import type { LoopContext } from './federation-loop.ts';

/** A task a trainer holds and has not answered yet. */
export interface OpenTask {
  msg: MessageOf<'task'>;
  assignment: Assignment;
  /** When it was sent (secondsNow). */
  sentAt: number;
}

/** Which task: the evaluation index it counts toward and, in async mode, its sequence number and model version. */
export interface TaskIds {
  round: number;
  seq?: number;
  version?: number;
}

/** A task carrying `weights` (the rule's task weights for `a`). */
export function taskMessage(config: Experiment, job: string, weights: Weights, a: Assignment, ids: TaskIds): MessageOf<'task'> {
  return {
    type: 'task',
    job,
    round: ids.round,
    ...(ids.seq !== undefined ? { seq: ids.seq } : {}),
    ...(ids.version !== undefined ? { version: ids.version } : {}),
    rank: a.rank,
    worldSize: config.federation.worldSize,
    mode: config.federation.mode,
    weights,
    hyper: taskHyperOf(config, a.slot),
  };
}

/**
 * The rule's task weights for each assignment, computed once per slice plan: slots given the same
 * plan (every fedavg slot) share one copy instead of one each. Sends only read them.
 */
export function taskWeightsPerPlan(rule: AggregationRule, global: Weights): (a: Assignment) => Weights {
  const byPlan = new Map<Assignment['plan'], Weights>();
  return (a) => {
    let w = byPlan.get(a.plan);
    if (!w) {
      w = rule.taskWeights(global, a);
      byPlan.set(a.plan, w);
    }
    return w;
  };
}

/** The ids by which a ready or an update names the task it answers. */
type TaskAnswer = Pick<MessageOf<'update'>, 'job' | 'round' | 'version' | 'seq' | 'rank'>;

/** Why `msg` (a ready or an update) from `slot` does not answer the task the slot holds, or null. */
export function checkAnswers(msg: TaskAnswer, job: string, slot: number, task: OpenTask | undefined): string | null {
  if (msg.job !== job) return `job ${msg.job} is not ${job}`;
  if (!task) return `slot ${slot} holds no task (a duplicate or late update)`;
  const t = task.msg;
  if (msg.version !== t.version) return `version ${msg.version ?? '(none)'} is not the version ${t.version ?? '(none)'} this trainer was given`;
  if (msg.seq !== t.seq) return `task ${msg.seq ?? '(none)'} is not the task ${t.seq ?? '(none)'} this trainer holds`;
  if (msg.round !== t.round) return `round ${msg.round} is not the round ${t.round} of this trainer's task`;
  if (msg.rank !== t.rank) return `rank ${msg.rank} is not the rank ${t.rank} this trainer was given`;
  return null;
}

/** Why the update from `slot` cannot be used, or null: it must answer the task the slot holds. */
export function checkUpdate(msg: MessageOf<'update'>, job: string, slot: number, task: OpenTask | undefined, rule: AggregationRule): string | null {
  return checkAnswers(msg, job, slot, task) ?? (task ? checkUpdateContent(msg, rule.expectedShapes(task.assignment)) : null);
}

/**
 * Grants the trainer in `slot` the sending of the update for `task` (UpdateCredits' grant): false,
 * with nothing sent, when the slot holds no task or no connection, or the grant could not be written.
 */
export function sendGrant<C>(ctx: Pick<LoopContext<C>, 'job' | 'registry' | 'outbox'>, slot: number, task: OpenTask | undefined): boolean {
  const conn = ctx.registry.bySlot(slot)?.conn;
  if (conn === null || conn === undefined || task === undefined) return false;
  const grant: MessageOf<'grant'> = { type: 'grant', job: ctx.job, round: task.msg.round, ...(task.msg.seq !== undefined ? { seq: task.msg.seq } : {}) };
  return ctx.outbox.send(conn, grant) > 0;
}
