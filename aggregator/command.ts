import type { Command } from 'commander';
import { resolveToken } from '../core/wire/token.ts';
import { holdForGo } from '../core/warm-start.ts';
import { hostname } from 'node:os';
import { admissionLimits, admissionOptions, backendOption, clientTlsOptions, DEFAULT_METASERVER, intOption, log, runRole, serverTlsOptions, urlOption, withBackend } from '../core/cli-options.ts';
import { isWildcardHost, loadClientTls, loadServerTls } from '../core/wire/tls.ts';
import { AGGREGATOR_NICE_ENV, lowerPriority, niceOf } from '../core/role-priority.ts';

export function register(program: Command): void {
  const cmd = program
    .command('aggregator')
    .description('run the round loop of one experiment: wait for trainers, slice, send, collect, merge, evaluate, record')
    .requiredOption('--config <file>', 'experiment config (JSON)')
    .option('--metaserver <url>', 'metaserver to register with', DEFAULT_METASERVER)
    .option('--job <id>', 'job id trainers join (default: the config name)')
    .option('--results <dir>', 'results store to append to', 'results')
    .option('--resume', 'continue the unfinished run of this config from its last checkpoint')
    .option('--force', 'run again even if this config already completed')
    .option('--host <addr>', 'interface the trainer server binds to', '127.0.0.1')
    .option('--port <n>', 'trainer server port (0: the OS picks one)', intOption('--port'), 0)
    .option('--advertise <host>', 'host name or address trainers on other machines reach this aggregator at (default: --host, or this machine\'s hostname when --host is 0.0.0.0 or ::)')
    .option('--token-file <file>', 'file holding the job token (else $FEDSLICE_TOKEN, else a random one is made and printed)')
    .option('--backend <name>', 'force a compute backend: tensorflow-gpu, tensorflow, wasm, cpu');
  admissionOptions(clientTlsOptions(serverTlsOptions(cmd))).action(async (opts) => {
    // before the backend starts its threads, which inherit the value
    lowerPriority(niceOf(process.env, AGGREGATOR_NICE_ENV));
    const tls = loadServerTls(opts);
    const clientTls = loadClientTls(opts);
    const advertise = advertisedHost(opts.host, opts.advertise);
    const { loadExperiment } = await import('../core/config.ts'); // zod: loaded on use, like the role itself
    const config = withBackend(loadExperiment(opts.config), opts.backend ? backendOption(opts.backend) : undefined);
    const { token, source } = resolveToken({ tokenFile: opts.tokenFile, allowGenerate: true });
    if (source === 'generated') log(`aggregator: no token given; this job's token is ${token} (give it to trainers as FEDSLICE_TOKEN)`);
    const job = opts.job ?? config.name;
    const { runAggregator, prepareAggregator } = await import('./run.ts'); // loaded on use: every other command starts without TensorFlow.js
    // a spare the runner started ahead of its run loads its backend and data, then waits to be started
    const prepared = await holdForGo(() => prepareAggregator(config), log);
    await runRole('aggregator', (signal) =>
      runAggregator({
        config,
        metaserver: urlOption(opts.metaserver),
        job,
        token,
        results: opts.results,
        resume: Boolean(opts.resume),
        force: Boolean(opts.force),
        host: opts.host,
        port: opts.port,
        ...(advertise ? { advertise } : {}),
        ...(tls ? { tls } : {}),
        admission: admissionLimits(opts),
        clientTls,
        signal,
        log,
      }, prepared),
    );
  });
}

/** The host put into the trainer-server URL registered with the metaserver. */
function advertisedHost(host: string, advertise?: string): string | undefined {
  if (advertise) return advertise;
  if (!isWildcardHost(host)) return undefined;
  const name = hostname();
  log(`aggregator: warning: --host ${host} with no --advertise; telling trainers to connect to ${name} (pass --advertise HOST if they cannot resolve it)`);
  return name;
}
