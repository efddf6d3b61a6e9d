/**
 * A LoopContext for one round loop alone, on fake timers: in-memory trainer connections joined to a
 * registry, an outbox that delivers into their inboxes, and a recorder that keeps what the loop
 * checkpoints and records. `events` lists, in order, every task sent, checkpoint, evaluation
 * started and record, for tests of what happens before what.
 */
import type { LoopContext } from '../../aggregator/federation-loop.ts';
import type { Outbox } from '../../aggregator/outbox.ts';
import { TrainerRegistry } from '../../aggregator/registry.ts';
import { evaluatedFigures, secondsNow, trainedFigures, type Evaluation, type RoundDraft, type TrainedRound } from '../../aggregator/round-record.ts';
import type { Experiment } from '../../core/config.ts';
import type { Weights } from '../../core/model/tensor.ts';
import { runKeyFields } from '../../core/results/schema.ts';
import type { RoundRecord } from '../../core/results/types.ts';
import type { AggregatorToTrainer } from '../../core/wire/schema.ts';

export interface FakeConn {
  inbox: AggregatorToTrainer[];
}

export interface FakeLoop {
  ctx: LoopContext<FakeConn>;
  registry: TrainerRegistry<FakeConn>;
  /** One joined connection per slot, trainer ids t0, t1, ... */
  conns: FakeConn[];
  /** Each round's draft, as checkpointed. */
  drafts: RoundDraft[];
  records: RoundRecord[];
  events: string[];
}

/** The evaluation every round gets unless the test gives its own. */
export const FAKE_EVALUATION: Evaluation = { loss: 1, accuracy: 0.5, seconds: 0 };

export function fakeLoop(config: Experiment, evaluate?: (weights: Weights) => Promise<Evaluation>): FakeLoop {
  const worldSize = config.federation.worldSize;
  const registry = new TrainerRegistry<FakeConn>(worldSize);
  const events: string[] = [];
  const drafts: RoundDraft[] = [];
  const records: RoundRecord[] = [];
  let sent = 0;
  const outbox: Outbox<FakeConn> = {
    send: (conn, msg) => {
      conn.inbox.push(msg);
      if (msg.type === 'task') events.push(`task ${msg.round} to rank ${msg.rank}`);
      sent++;
      return 1;
    },
    traffic: () => ({ sent, received: 0 }),
    idle: () => true, // delivered as sent
  };
  const ctx: LoopContext<FakeConn> = {
    config,
    job: config.name,
    registry,
    outbox,
    log: () => {},
    evaluate: (weights) => {
      events.push('evaluate');
      return evaluate ? evaluate(weights) : Promise.resolve(FAKE_EVALUATION);
    },
    checkpoint: async (_weights, draft) => {
      drafts.push(draft);
      events.push(`checkpoint ${draft.round}`);
      return { kind: 'round', runId: 'r', ...runKeyFields(config), ...trainedFigures(draft, secondsNow()) };
    },
    record: (trained: TrainedRound, ev, overlapSeconds) => {
      const { samples: _, ...figures } = trained;
      const record: RoundRecord = { ...figures, ...evaluatedFigures(trained, ev, overlapSeconds), time: '' };
      records.push(record);
      events.push(`record ${record.round}`);
      return record;
    },
  };
  const conns: FakeConn[] = Array.from({ length: worldSize }, () => ({ inbox: [] }));
  conns.forEach((c, slot) => registry.join(`t${slot}`, c));
  return { ctx, registry, conns, drafts, records, events };
}
