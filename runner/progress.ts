/**
 * What a sweep shows while it runs: on a TTY a live view redrawn in place (done/total, each
 * running run's round, ETA); otherwise one plain line per event, for logs and CI.
 */
export interface RunningView {
  key: string;
  label: string;
  round: number;
  rounds: number;
  state: string;
  /** Trainers present in the job, out of worldSize. */
  trainers: number;
  worldSize: number;
  startedAt: number;
}

export interface Progress {
  event(line: string): void;
  update(running: RunningView[], counts: { done: number; failed: number; skipped: number; total: number }, etaS: number | null): void;
  close(): void;
}

export function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return '-';
  const m = Math.floor(s / 60);
  const h = Math.floor(m / 60);
  if (h) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  if (m) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${s.toFixed(0)}s`;
}

/**
 * Seconds left when `remaining` more items (runs of a sweep, rounds of a run) go at the pace of
 * the `done` ones that took `elapsedS`; null before the first is done.
 */
export function etaSeconds(remaining: number, done: number, elapsedS: number): number | null {
  return done > 0 ? (Math.max(0, remaining) * elapsedS) / done : null;
}

/** A running run in a few words: who is still missing, or which round is under way. */
export function describeState(r: Pick<RunningView, 'state' | 'round' | 'rounds' | 'trainers' | 'worldSize'>): string {
  switch (r.state) {
    case 'starting':
    case 'waiting':
      return `${r.state}: ${r.trainers}/${r.worldSize} trainers`;
    case 'training':
      return r.round < r.rounds ? `training round ${r.round + 1}` : 'finishing';
    default:
      return r.state;
  }
}

export function plainProgress(out: NodeJS.WritableStream = process.stdout): Progress {
  return {
    event: (line) => out.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`),
    update: () => {},
    close: () => {},
  };
}

export function ttyProgress(out: NodeJS.WriteStream = process.stdout): Progress {
  let drawn = 0;
  let last: { running: RunningView[]; counts: { done: number; failed: number; skipped: number; total: number }; eta: number | null } | null = null;
  const clear = () => {
    if (drawn) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
  };
  const draw = () => {
    if (!last) return;
    const { running, counts, eta } = last;
    const width = out.columns ?? 100;
    const lines = [
      `sweep: ${counts.done + counts.failed}/${counts.total - counts.skipped} runs finished (${counts.failed} failed, ${counts.skipped} skipped)  ${running.length} running  ETA ${eta === null ? '-' : fmtDuration(eta)}`.slice(0, width - 1),
      ...running.map((r) => {
        const barWidth = Math.min(r.rounds, 20);
        const bar = r.rounds ? `[${'#'.repeat(Math.round((Math.min(r.round, r.rounds) / r.rounds) * barWidth)).padEnd(barWidth, '.')}]` : '';
        return `  ${bar} ${`${r.round}/${r.rounds}`.padStart(5)} rounds  ${describeState(r).padEnd(22)} ${fmtDuration((Date.now() - r.startedAt) / 1000).padStart(6)}  ${r.label}`.slice(0, width - 1);
      }),
    ];
    out.write(lines.join('\n') + '\n');
    drawn = lines.length;
  };
  const timer = setInterval(() => {
    clear();
    draw();
  }, 1000);
  timer.unref();
  return {
    event: (line) => {
      clear();
      out.write(`${line}\n`);
      draw();
    },
    update: (running, counts, eta) => {
      last = { running, counts, eta };
      clear();
      draw();
    },
    close: () => {
      clearInterval(timer);
      clear();
    },
  };
}
