/**
 * One attempt at a run, whatever executes it: the run's config written where its roles read it,
 * an observer in its job (the aggregator's status, trainers joining and leaving), the
 * executor's run, and its end recorded.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { withStorageErrors } from '../core/results/storage-error.ts';
import { connectMetaserver, type MetaClient } from '../metaserver/client.ts';
import { recordEnd } from './attempt-record.ts';
import type { Attempt, Executor, RunOutcome } from './executor.ts';

/** How long a finished attempt waits to hear its aggregator leave the metaserver. */
const AGGREGATOR_LEAVE_MS = 5000;

export async function runAttempt(executor: Executor, a: Attempt): Promise<RunOutcome> {
  // A store that cannot take the config throws a StorageError: the sweep starts no more runs.
  writeRunConfig(a);
  // The observer joins first so it hears every status of this job.
  let observer: Observer;
  try {
    observer = await watchRun(a);
  } catch (e) {
    return { status: 'failed', reason: `cannot watch the run: ${(e as Error).message}` };
  }
  let outcome: RunOutcome;
  try {
    outcome = await executor.run(a);
  } finally {
    await observer.close();
  }
  return recordEnd(a, outcome, executor.logs(a));
}

/** The run's config file, where its roles read it (the same bytes every time it is written). */
export function writeRunConfig(a: Pick<Attempt, 'layout' | 'run'>): void {
  withStorageErrors(a.layout.configFile, () => {
    mkdirSync(a.layout.dir, { recursive: true });
    writeFileSync(a.layout.configFile, JSON.stringify(a.run.config, null, 2));
  });
}

interface Observer {
  /** Closes once the aggregator has left the job (bounded), so every status it sent has been heard. */
  close(): Promise<void>;
}

async function watchRun(a: Attempt): Promise<Observer> {
  let client: MetaClient | null = null;
  let onAggregatorGone = () => {};
  const hasAggregator = () => client !== null && client.peers().some((p) => p.role === 'aggregator');
  const onPeers = () => {
    if (!client) return;
    a.hooks.onTrainers(client.peers().filter((p) => p.role === 'trainer').length);
    if (!hasAggregator()) onAggregatorGone();
  };
  client = await connectMetaserver({
    url: a.metaserver,
    job: a.run.key,
    role: 'observer',
    id: `runner-${process.pid}-${a.number}`,
    token: a.token,
    onStatus: (s) => a.hooks.onStatus(s),
    onPeerJoined: onPeers,
    onPeerLeft: onPeers,
    onClose: () => onAggregatorGone(),
  });
  const observer = client;
  return {
    close: async () => {
      // The metaserver relays the aggregator's statuses before its leave: hearing the leave means none is in flight.
      if (hasAggregator()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, AGGREGATOR_LEAVE_MS);
          onAggregatorGone = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      observer.close();
    },
  };
}
