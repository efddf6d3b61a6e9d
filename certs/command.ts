import type { Command } from 'commander';
import { intOption, log } from '../core/cli-options.ts';
import { defaultHosts, makeCerts } from './make.ts';

export function register(program: Command): void {
  program
    .command('certs')
    .description('make a self-signed CA and a server certificate for wss:// (metaserver and aggregator --tls-cert/--tls-key, trainers --tls-ca)')
    .requiredOption('--out <dir>', 'directory to write ca.pem, ca-key.pem, server.pem, server-key.pem into')
    .option('--hosts <list>', 'comma-separated host names and IP addresses clients connect by (default: localhost, 127.0.0.1 and this hostname)')
    .option('--days <n>', 'validity in days', intOption('--days', 1), 365)
    .option('--force', 'replace certificates already in --out')
    .action((opts: { out: string; hosts?: string; days: number; force?: boolean }) => {
      const hosts = opts.hosts ? opts.hosts.split(',').map((h) => h.trim()).filter(Boolean) : defaultHosts();
      const f = makeCerts({ out: opts.out, hosts, days: opts.days, force: Boolean(opts.force) });
      log(`certs: wrote ${f.ca} (CA; give it to clients as --tls-ca), ${f.cert} and ${f.key} (servers: --tls-cert/--tls-key) for ${hosts.join(', ')}, valid ${opts.days} days`);
      log(`certs: keep ${f.caKey} private; it can sign certificates every client will trust`);
    });
}
