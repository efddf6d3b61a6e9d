/**
 * Keeps the overview current and tells subscribers when it changes. The store is watched
 * (fs.watch: an append shows in milliseconds) and also looked at once a second, since inotify
 * does not see writes made on other hosts of a shared filesystem (a Slurm sweep's results). A look
 * reads only the bytes appended since the last one; rebuilds are at least MIN_GAP_MS apart, so a
 * busy step log costs a bounded amount of CPU, and a record shows within about a second.
 */
import { watch, type FSWatcher } from 'node:fs';
import { LiveStore, type StoreChanges } from './live-store.ts';
import { type RoundsView, overviewOf, roundsView, stepsChart } from './overview.ts';
import type { ChartDef } from '../analysis/charts.ts';
import { lockAbandoned } from '../runner/lock.ts';

const POLL_MS = 1000;
const MIN_GAP_MS = 500;
const LOCK_LOOK_TICKS = 5;

export class OverviewFeed {
  readonly live: LiveStore;
  /** The overview as served: JSON, one line. */
  json: string;
  private readonly listeners = new Set<(json: string) => void>();
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private pending: NodeJS.Timeout | null = null;
  private lastRun = 0;
  private ticks = 0;
  private readError: string | null = null;
  /** A running run's sweep is gone: its row must say interrupted. */
  private runsStale = false;

  // the overview's parts, each rebuilt only when its files changed: a step-log append, the most
  // frequent, leaves the runs table and the round charts as they are
  private rounds: RoundsView;
  private steps: ChartDef | null;

  constructor(dir: string) {
    this.live = new LiveStore(dir);
    this.live.refresh();
    this.rounds = roundsView(this.live);
    this.steps = stepsChart(this.live, this.rounds.shown);
    this.json = this.build();
  }

  start(): void {
    try {
      this.watcher = watch(this.live.dir, () => this.schedule());
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = null; // the poll goes on
      });
    } catch {
      /* no inotify here: the poll alone keeps the page current */
    }
    this.poll = setInterval(() => {
      // a sweep killed outright writes nothing: look at its runs' locks now and then
      if (++this.ticks % LOCK_LOOK_TICKS === 0 && this.rounds.runs.some((r) => r.state === 'running' && lockAbandoned(this.live.dir, r.key))) this.runsStale = true;
      this.schedule();
    }, POLL_MS);
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.pending) clearTimeout(this.pending);
    this.listeners.clear();
  }

  subscribe(listener: (json: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private schedule(): void {
    if (this.pending) return;
    const wait = Math.max(0, this.lastRun + MIN_GAP_MS - Date.now());
    this.pending = setTimeout(() => this.update(), wait);
  }

  private update(): void {
    this.pending = null;
    this.lastRun = Date.now();
    let changes: StoreChanges = { runs: false, rounds: false, steps: false };
    let changed: boolean;
    try {
      changes = this.live.refresh();
      if (this.runsStale) changes.runs = true;
      this.runsStale = false;
      changed = changes.runs || changes.rounds || changes.steps || this.readError !== null;
      this.readError = null;
    } catch (e) {
      // a store that cannot be read right now (permissions, a disk gone) keeps the last view
      const message = `cannot read ${this.live.dir}: ${(e as Error).message}`;
      changed = message !== this.readError;
      this.readError = message;
    }
    if (!changed) return;
    if (changes.runs || changes.rounds) this.rounds = roundsView(this.live);
    if (changes.runs || changes.steps) this.steps = stepsChart(this.live, this.rounds.shown);
    this.json = this.build();
    for (const l of this.listeners) l(this.json);
  }

  private build(): string {
    const overview = overviewOf(this.live, this.rounds, this.steps);
    if (this.readError !== null) overview.warnings.unshift(this.readError);
    return JSON.stringify(overview);
  }
}
