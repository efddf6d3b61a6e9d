import type { Command } from 'commander';
import { abortOnSignals, intOption, signalExitCode } from '../core/cli-options.ts';

export function register(program: Command): void {
  const runner = program.command('runner').description('run experiments in bulk');
  runner
    .command('sweep')
    .description('run every experiment of a sweep file as child processes: parallel, resumable, logged')
    .requiredOption('--config <file>', 'sweep file (JSON): {name, base, grid, skip}')
    .option('--parallel <n>', 'runs at a time (default: as many as fit the cores, one core per trainer as on the wasm backend)', intOption('--parallel', 1))
    .option('--results <dir>', 'results store (runs.jsonl, rounds.jsonl, logs/, checkpoints/)', 'results')
    .option('--timeout <s>', 'fail a run that takes longer than this many seconds (0: no limit)', intOption('--timeout', 0), 0)
    .option('--retries <k>', 'run a failed run again up to k times (it resumes from its checkpoint)', intOption('--retries', 0), 0)
    .option('--force', 'run completed runs again')
    .option('--dry-run', 'list the runs and how many are already done; run nothing')
    .addHelpText(
      'after',
      `
Each run is an aggregator and worldSize trainers as child processes around one metaserver on a
free port; its logs go to <results>/logs/<run key>/. Completed runs are skipped, so after Ctrl-C
or a failure the same command finishes what is missing (interrupted runs resume from their last
checkpoint). Several sweeps may share one results directory: a run is locked while it runs.

Example:
  fedslice runner sweep --config configs/smoke.json && fedslice analyze --no-plots`,
    )
    .action(async (opts) => {
      const signal = abortOnSignals();
      const { runSweep } = await import('./sweep.ts'); // loaded on use, like every command's work
      const s = await runSweep({
        config: opts.config,
        results: opts.results,
        parallel: opts.parallel,
        timeoutS: opts.timeout,
        retries: opts.retries,
        force: Boolean(opts.force),
        dryRun: Boolean(opts.dryRun),
        signal,
        tty: Boolean(process.stdout.isTTY) && !process.env.CI,
      });
      if (signal.aborted) process.exitCode = signalExitCode(signal);
      else if (s.failed.length) process.exitCode = 1;
    });
}
