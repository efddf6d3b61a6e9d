/** `fedslice data download|synth|info`. */
import type { Command } from 'commander';
import { FedsliceError } from '../errors.ts';
import { downloadCifar } from './download.ts';
import { describeDataDir } from './info.ts';
import { SYNTHETIC_DEFAULTS, writeSynthetic } from './synthetic.ts';

function intOption(name: string, min: number) {
  return (value: string): number => {
    const v = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(v) || v < min) {
      throw new FedsliceError('FEDSLICE_ERR_OPTION', `--${name} must be an integer >= ${min}, got '${value}'`);
    }
    return v;
  };
}

export function register(program: Command): void {
  const data = program.command('data').description('get, generate and inspect data sets (CIFAR-100, synthetic)');

  data
    .command('download')
    .description('Download CIFAR-100 (binary version), check its MD5, unpack and validate it')
    .option('--dir <dir>', 'folder to put train.bin, test.bin and the label names in', 'data/cifar100')
    .option('--archive <file>', 'use a local copy of cifar-100-binary.tar.gz instead of downloading')
    .addHelpText('after', '\nOffline? Download https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz elsewhere and pass it with --archive.')
    .action(async (o: { dir: string; archive?: string }) => {
      await downloadCifar({ dir: o.dir, archive: o.archive });
    });

  const d = SYNTHETIC_DEFAULTS;
  data
    .command('synth')
    .description('Generate the deterministic synthetic set (CIFAR binary layout) into a folder')
    .option('--dir <dir>', 'output folder', 'data/synthetic')
    .option('--classes <n>', 'number of classes (2-256)', intOption('classes', 2), d.numClasses)
    .option('--train <n>', 'training images', intOption('train', 1), d.trainCount)
    .option('--test <n>', 'test images', intOption('test', 1), d.testCount)
    .option('--seed <n>', 'seed (same seed => identical files)', intOption('seed', 0), d.seed)
    .action(async (o: { dir: string; classes: number; train: number; test: number; seed: number }) => {
      const t0 = performance.now();
      writeSynthetic(o.dir, { numClasses: o.classes, trainCount: o.train, testCount: o.test, seed: o.seed });
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      process.stdout.write(`synthetic set in ${o.dir}: ${o.classes} classes, ${o.train} train, ${o.test} test, seed ${o.seed} (${s} s)\n`);
    });

  data
    .command('info')
    .description('Summarise a data folder: records per split, classes, per-class counts, file sizes')
    .requiredOption('--dir <dir>', 'data folder (e.g. data/cifar100 or data/synthetic)')
    .action(async (o: { dir: string }) => {
      process.stdout.write(describeDataDir(o.dir).join('\n') + '\n');
    });
}
