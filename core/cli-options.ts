/** Small pieces every sub-command shares: option parsers that fail with one clear line, signals. */
import { InvalidArgumentError, type Command } from 'commander';
import { TLS_CA_ENV } from './wire/tls.ts';
import { DEFAULT_ADMISSION, type AdmissionLimits } from './wire/admission.ts';
import type { Experiment } from './config.ts';
import { BACKEND_NAMES, isBackendName, type BackendName } from './compute/backend-names.ts';

export const DEFAULT_METASERVER = 'ws://127.0.0.1:9100';

export function intOption(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
}

export function positiveNumberOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got "${v}"`);
    return n;
  };
}

export function backendOption(v: string): BackendName {
  if (!isBackendName(v)) throw new InvalidArgumentError(`must be one of ${BACKEND_NAMES.join(', ')}`);
  return v;
}

export function urlOption(v: string): string {
  if (!/^wss?:\/\/[^\s]+$/.test(v)) throw new InvalidArgumentError(`must be a ws:// or wss:// URL, got "${v}"`);
  return v;
}

/** Applies --backend over the config's choice. */
export function withBackend(c: Experiment, backend?: BackendName): Experiment {
  return backend ? { ...c, backend } : c;
}

/** An AbortSignal that fires on the first SIGINT or SIGTERM; a second one exits at once. */
export function abortOnSignals(): AbortSignal {
  const ac = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
    ac.abort(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  watchParent(() => onSignal('SIGTERM'));
  return ac.signal;
}

/**
 * A role started by the sweep runner (FEDSLICE_PARENT_PID set) stops as on SIGTERM when the
 * runner is gone, even if the runner was SIGKILLed and could not end its children itself.
 */
function watchParent(stop: () => void): void {
  const pid = Number(process.env.FEDSLICE_PARENT_PID);
  if (!Number.isInteger(pid) || pid <= 1) return;
  const timer = setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') return;
      clearInterval(timer);
      process.stderr.write(`fedslice: the sweep runner (pid ${pid}) is gone; stopping\n`);
      stop();
    }
  }, 1000);
  timer.unref();
}

/** Exit status for a run stopped by a signal. */
export function signalExitCode(signal: AbortSignal): number {
  return signal.reason === 'SIGINT' ? 130 : 143;
}

/**
 * Runs a role until it ends or a signal stops it: a stop by signal is one log line and the
 * conventional exit status (130 / 143), not an error.
 */
export async function runRole(role: string, body: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
  const signal = abortOnSignals();
  try {
    await body(signal);
  } catch (e) {
    if (!signal.aborted) throw e;
    log(`${role}: ${(e as Error).message}`);
    process.exitCode = signalExitCode(signal);
  }
}

export const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** --tls-cert/--tls-key for roles that serve WebSockets. */
export function serverTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls-cert <file>', 'PEM certificate: serve wss:// instead of ws:// (`fedslice certs` makes one)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert');
}

/** --tls-ca/--tls-insecure for roles that connect to wss:// URLs. */
export function clientTlsOptions(cmd: Command): Command {
  return cmd
    .option('--tls-ca <file>', `PEM CA (or server certificate) to trust for wss:// URLs (else $${TLS_CA_ENV}, else the system CAs)`)
    .option('--tls-insecure', 'accept any wss:// certificate without verifying it (traffic is encrypted but the server is not authenticated)');
}

/** Bounds on connections that have not joined yet, for roles that serve WebSockets. */
export function admissionOptions(cmd: Command): Command {
  const d = DEFAULT_ADMISSION;
  return cmd
    .option('--handshake-timeout <s>', `seconds a new connection has to join (TLS, token, join message) before it is closed (default ${d.handshakeTimeoutMs / 1000})`, positiveNumberOption('--handshake-timeout'))
    .option('--max-pending <n>', `connections that have not joined yet, from all addresses together (default ${d.maxPending})`, intOption('--max-pending', 1))
    .option('--max-pending-per-address <n>', `connections that have not joined yet, from one address (default ${d.maxPendingPerAddress})`, intOption('--max-pending-per-address', 1));
}

export function admissionLimits(opts: { handshakeTimeout?: number; maxPending?: number; maxPendingPerAddress?: number }): Partial<AdmissionLimits> {
  return {
    ...(opts.handshakeTimeout !== undefined ? { handshakeTimeoutMs: Math.round(opts.handshakeTimeout * 1000) } : {}),
    ...(opts.maxPending !== undefined ? { maxPending: opts.maxPending } : {}),
    ...(opts.maxPendingPerAddress !== undefined ? { maxPendingPerAddress: opts.maxPendingPerAddress } : {}),
  };
}
