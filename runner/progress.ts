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
      `\x1b[1msweep\x1b[0m ${counts.done + counts.failed}/${counts.total - counts.skipped} runs finished (${counts.failed} failed, ${counts.skipped} skipped)  ETA ${eta === null ? '-' : fmtDuration(eta)}`,
      ...running.map((r) => {
        const bar = r.rounds ? `[${'#'.repeat(r.round).padEnd(r.rounds, '.')}]` : '';
        return `  ${bar} round ${r.round}/${r.rounds} ${r.state.padEnd(8)} ${fmtDuration((Date.now() - r.startedAt) / 1000).padStart(6)}  ${r.label}`.slice(0, width - 1);
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
