import type { Command } from 'commander';
import { admissionLimits, admissionOptions, intOption, log, serverTlsOptions } from '../core/cli-options.ts';
import { loadServerTls } from '../core/wire/tls.ts';
import { FedsliceError } from '../core/errors.ts';

export function register(program: Command): void {
  const cmd = program
    .command('metaserver')
    .description('run the rendezvous that coordinates jobs: where each aggregator listens, which trainers are present, liveness')
    .option('--host <addr>', 'interface to bind', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: the OS picks one)', intOption('--port'), 9100)
    .option('--ping-interval <ms>', 'liveness ping interval; a peer that leaves 3 pings in a row unanswered is dropped', intOption('--ping-interval', 100), 5000);
  admissionOptions(serverTlsOptions(cmd)).action(async (opts: { host: string; port: number; pingInterval: number; tlsCert?: string; tlsKey?: string; handshakeTimeout?: number; maxPending?: number; maxPendingPerAddress?: number }) => {
    const tls = loadServerTls(opts);
    const { startMetaserver } = await import('./server.ts'); // ws and msgpackr: loaded on use
    let server;
    try {
      server = await startMetaserver({ host: opts.host, port: opts.port, pingIntervalMs: opts.pingInterval, ...(tls ? { tls } : {}), admission: admissionLimits(opts), log });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new FedsliceError('FEDSLICE_ERR_LISTEN', `cannot listen on ${opts.host}:${opts.port} (${code ?? (e as Error).message}); pick another --port or stop what holds it`);
    }
    log(`metaserver: listening on ${server.url}`);
    const srv = server;
    await new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        log(`metaserver: ${sig}: shutting down`);
        void srv.close().then(resolve);
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
  });
}
