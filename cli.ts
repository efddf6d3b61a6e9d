/** The one `fedslice` command; each sub-command registers itself from its own folder. */
import { Command, CommanderError } from 'commander';
import { register as registerData } from './core/data/command.ts';
import { register as registerMetaserver } from './metaserver/command.ts';
import { register as registerAggregator } from './aggregator/command.ts';
import { register as registerTrainer } from './trainer/command.ts';
import { register as registerRunner } from './runner/command.ts';
import { register as registerAnalysis } from './analysis/command.ts';
import { register as registerCerts } from './certs/command.ts';
import { register as registerDashboard } from './dashboard/command.ts';
import { isFedsliceError } from './core/errors.ts';
import { fedsliceVersion } from './core/results/environment.ts';
import { isStorageFault, storageErrorOf } from './core/results/storage-error.ts';

// `fedslice ... | head` closes our stdout early: that is the reader's choice, not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  if (isStorageFault(e)) return;
  throw e;
});
// A role's log is its stderr, often a file in the results directory: when that disk is full a log
// line is lost, but the role goes on (its exit status and the store still say what happened).
// There is nowhere left to report a failing stderr, and crashing over it would lose the exit status.
process.stderr.on('error', () => {});

const program = new Command('fedslice')
  .description('Horizontal tensor-parallel federated learning experiments on TensorFlow.js')
  .version(fedsliceVersion())
  // commander's own errors (a missing or unknown option) in the one line every other error uses
  .configureOutput({ outputError: (text, write) => write(`fedslice: ${text.trimEnd()} (run with --help for usage)\n`) })
  .exitOverride();

registerMetaserver(program);
registerAggregator(program);
registerTrainer(program);
registerRunner(program);
registerAnalysis(program);
registerDashboard(program);
registerData(program);
registerCerts(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  // A fault of the machine's storage that no caller converted still gets its one line.
  const known = isFedsliceError(e) ? e : storageErrorOf(e);
  if (e instanceof CommanderError) {
    process.exitCode = e.exitCode;
  } else if (known) {
    process.stderr.write(`fedslice: error: ${known.message}\n`);
    process.exitCode = known.exitCode;
  } else {
    process.stderr.write(`fedslice: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 2;
  }
  // Work still in flight (a trainer mid-step when told the run failed) must not hold the exit.
  process.exit();
}
