import type { Command } from 'commander';
import { hostname } from 'node:os';
import { resolveToken } from '../core/wire/token.ts';
import { holdForGo } from '../core/warm-start.ts';
import { backendOption, clientTlsOptions, DEFAULT_METASERVER, intOption, log, runRole, urlOption, withBackend } from '../core/cli-options.ts';
import { loadClientTls } from '../core/wire/tls.ts';

export function register(program: Command): void {
  const cmd = program
    .command('trainer')
    .description('join a job, train the slices the aggregator sends on this trainer\'s shard, upload the deltas')
    .requiredOption('--config <file>', 'experiment config (JSON), the same file the aggregator uses')
    .option('--metaserver <url>', 'metaserver to find the aggregator through', DEFAULT_METASERVER)
    .option('--job <id>', 'job id to join (default: the config name)')
    .option('--id <name>', 'this trainer\'s id; rejoining with the same id gets the same shard back (default: host-pid)')
    .option('--shard <k>', 'ask for data shard k (default: the first free one)', intOption('--shard'))
    .option('--token-file <file>', 'file holding the job token (else $FEDSLICE_TOKEN)')
    .option('--backend <name>', 'force a compute backend: tensorflow-gpu, tensorflow, wasm, cpu');
  clientTlsOptions(cmd).action(async (opts) => {
    const tls = loadClientTls(opts);
    const { loadExperiment } = await import('../core/config.ts'); // zod: loaded on use, like the role itself
    const config = withBackend(loadExperiment(opts.config), opts.backend ? backendOption(opts.backend) : undefined);
    const { token } = resolveToken({ tokenFile: opts.tokenFile, allowGenerate: false });
    const { runTrainer, prepareTrainer } = await import('./run.ts'); // loaded on use: every other command starts without TensorFlow.js
    // a spare the runner started ahead of its run loads its backend and data, then waits to be started
    const prepared = await holdForGo(() => prepareTrainer(config), log);
    await runRole('trainer', (signal) =>
      runTrainer({
        config,
        metaserver: urlOption(opts.metaserver),
        job: opts.job ?? config.name,
        token,
        id: opts.id ?? `${hostname()}-${process.pid}`,
        shard: opts.shard,
        tls,
        signal,
        log,
      }, prepared),
    );
  });
}
