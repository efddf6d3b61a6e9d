import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { abortOnSignals, intOption } from '../core/cli-options.ts';
import { DASHBOARD_TOKEN_ENV } from './access.ts';

export const DEFAULT_DASHBOARD_PORT = 9200;

export function register(program: Command): void {
  program
    .command('dashboard')
    .description('a live, read-only web page over a results store: runs, rounds, ETA, charts that grow as records arrive')
    .option('--results <dir>', 'results store to show', 'results')
    .option('--host <addr>', 'interface to bind; anything but loopback requires a token', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free port)', intOption('--port', 0), DEFAULT_DASHBOARD_PORT)
    .option('--token <token>', `token visitors must present when bound beyond loopback (default: $${DASHBOARD_TOKEN_ENV}, else a new one, printed in the URL)`)
    .addHelpText(
      'after',
      `
The page lists every run with its state, round r/R, ETA and last test accuracy, and draws the
analysis's charts (test accuracy per round with the seed band, training loss per step of running
runs, time per round by phase) as records are appended; a run's page shows its config, profile
and the tail of its logs. It only reads the store, so it may run beside a sweep, after it, or on
another machine that sees the same results directory.

Examples:
  fedslice dashboard --results results
  fedslice dashboard --host 0.0.0.0 --port 9200     (prints a URL with a token to share)
  fedslice runner sweep --config configs/smoke.json --dashboard`,
    )
    .action(async (opts) => {
      if (!existsSync(opts.results)) throw (await import('../analysis/load.ts')).noResultsError(opts.results);
      const signal = abortOnSignals();
      const { startDashboard } = await import('./server.ts'); // loaded on use, like every command's work
      const dashboard = await startDashboard({ results: opts.results, host: opts.host, port: opts.port, token: opts.token });
      process.stdout.write(`dashboard: ${dashboard.url} (results ${opts.results}; Ctrl-C stops it)\n`);
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await dashboard.close();
    });
}
