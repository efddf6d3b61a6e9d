import { InvalidArgumentError, type Command } from 'commander';
import { abortOnSignals, intOption, signalExitCode } from '../core/cli-options.ts';
import { DEFAULT_DASHBOARD_PORT } from '../dashboard/command.ts';
import { createExecutor, EXECUTOR_NAMES, isExecutorName, type ExecutorName } from './executors.ts';

function executorOption(v: string): ExecutorName {
  if (isExecutorName(v)) return v;
  throw new InvalidArgumentError(`--executor must be ${EXECUTOR_NAMES.join(' or ')}, not "${v}"`);
}

/** --slurm-args as sbatch would get them from a shell: split on spaces, quotes group. */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  let word: string | null = null;
  let quote: string | null = null;
  for (const ch of s) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== null) out.push(word);
      word = null;
    } else word = (word ?? '') + ch;
  }
  if (quote) throw new InvalidArgumentError(`--slurm-args has an unclosed ${quote}`);
  if (word !== null) out.push(word);
  return out;
}

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
    .option('--executor <name>', 'where runs go: local (child processes here) or slurm (one Slurm job per run)', executorOption, 'local')
    .option('--slurm-args <args>', 'extra sbatch options for every job, e.g. "--partition=gpu --time=02:00:00 --account=proj" (--executor slurm)')
    .option('--dashboard [port]', `serve the live dashboard of the results store beside the sweep, on 127.0.0.1 (port ${DEFAULT_DASHBOARD_PORT} unless given; 0: any free port), and print its URL`, intOption('--dashboard', 0))
    .option('--no-warm-start', "start each run's roles only when the run starts (by default the next run's roles start, held, while the current run trains its last round)")
    .option('--metaserver-host <addr>', "interface the sweep's metaserver binds; 0.0.0.0 lets compute nodes reach it (they get this machine's hostname)", '127.0.0.1')
    .addHelpText(
      'after',
      `
Each run is an aggregator and worldSize trainers as child processes around one metaserver on a
free port; its logs go to <results>/logs/<run key>/. Completed runs are skipped, so after Ctrl-C
or a failure the same command finishes what is missing (interrupted runs resume from their last
checkpoint). Several sweeps may share one results directory: a run is locked while it runs.

With --executor slurm each run is one Slurm job of 1 + worldSize tasks (srun places the aggregator
and the trainers; one GPU per trainer when the backend is tensorflow-gpu); --results must be on a
filesystem the compute nodes share. Ctrl-C cancels the sweep's jobs (scancel) and records them
interrupted; the same command resumes them.

Examples:
  fedslice runner sweep --config configs/smoke.json && fedslice analyze --no-plots
  fedslice runner sweep --config configs/reference.json --executor slurm --metaserver-host 0.0.0.0 \\
    --results /shared/$USER/fedslice-results --slurm-args "--partition=gpu --time=04:00:00"`,
    )
    .action(async (opts) => {
      const signal = abortOnSignals();
      const { runSweep } = await import('./sweep.ts'); // loaded on use, like every command's work
      const executor = await createExecutor(opts.executor, { parallel: opts.parallel, slurmArgs: splitArgs(opts.slurmArgs ?? ''), metaserverHost: opts.metaserverHost, warmStart: opts.warmStart !== false });
      const s = await runSweep({
        config: opts.config,
        results: opts.results,
        timeoutS: opts.timeout,
        retries: opts.retries,
        force: Boolean(opts.force),
        dryRun: Boolean(opts.dryRun),
        executor,
        metaserverHost: opts.metaserverHost,
        dashboardPort: opts.dashboard === undefined ? undefined : opts.dashboard === true ? DEFAULT_DASHBOARD_PORT : opts.dashboard,
        signal,
        tty: Boolean(process.stdout.isTTY) && !process.env.CI,
      });
      if (signal.aborted) process.exitCode = signalExitCode(signal);
      else if (s.failed.length) process.exitCode = 1;
    });
}
