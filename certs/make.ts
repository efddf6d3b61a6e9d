/**
 * A self-signed CA and a server certificate signed by it, made with the `openssl` binary (node
 * cannot issue X.509 certificates). Trainers trust ca.pem; both servers use server.pem and
 * server-key.pem. Keys are written mode 0600.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FedsliceError } from '../core/errors.ts';

export interface CertsOptions {
  out: string;
  hosts: string[];
  days: number;
  force: boolean;
  /** The openssl binary (tests point it elsewhere to check the missing-binary message). */
  openssl?: string;
}

export interface CertFiles {
  ca: string;
  caKey: string;
  cert: string;
  key: string;
}

export const defaultHosts = (): string[] => [...new Set(['localhost', '127.0.0.1', hostname()])];

export function certFiles(out: string): CertFiles {
  return { ca: join(out, 'ca.pem'), caKey: join(out, 'ca-key.pem'), cert: join(out, 'server.pem'), key: join(out, 'server-key.pem') };
}

/** subjectAltName entries: IP: for addresses, DNS: for names. */
export function subjectAltName(hosts: string[]): string {
  return hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
}

export function makeCerts(o: CertsOptions): CertFiles {
  const openssl = o.openssl ?? 'openssl';
  if (o.hosts.length === 0) throw new FedsliceError('FEDSLICE_ERR_CERTS', '--hosts is empty; list the names and addresses clients use, e.g. --hosts node1,10.0.0.5');
  for (const h of o.hosts) {
    if (!/^[A-Za-z0-9.:*-]+$/.test(h)) throw new FedsliceError('FEDSLICE_ERR_CERTS', `--hosts entry "${h}" is not a host name or IP address`);
  }
  const files = certFiles(o.out);
  const present = Object.values(files).filter((f) => existsSync(f));
  if (present.length && !o.force) throw new FedsliceError('FEDSLICE_ERR_CERTS', `${present.join(', ')} already exist; pass --force to replace them or pick another --out`);
  mkdirSync(o.out, { recursive: true });
  const work = mkdtempSync(join(o.out, '.certs-'));
  const run = (args: string[]) => {
    try {
      execFileSync(openssl, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
      if (err.code === 'ENOENT') throw new FedsliceError('FEDSLICE_ERR_CERTS', `\`${openssl}\` was not found; install OpenSSL (apt-get install openssl) or pass your own --tls-cert/--tls-key`);
      const detail = err.stderr?.toString().trim().split('\n').pop() ?? err.message;
      throw new FedsliceError('FEDSLICE_ERR_CERTS', `openssl ${args[0]} failed: ${detail}`);
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const days = ['-days', String(o.days)];
  try {
    run(['req', '-x509', ...ec, '-keyout', files.caKey, '-out', files.ca, ...days, '-subj', `/CN=fedslice CA ${hostname()}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    const csr = join(work, 'server.csr');
    run(['req', ...ec, '-keyout', files.key, '-out', csr, '-subj', `/CN=${o.hosts[0]}`]);
    const ext = join(work, 'server.ext');
    writeFileSync(ext, `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=${subjectAltName(o.hosts)}\n`);
    run(['x509', '-req', '-in', csr, '-CA', files.ca, '-CAkey', files.caKey, '-set_serial', `0x${Date.now().toString(16)}`, ...days, '-extfile', ext, '-out', files.cert]);
  } finally {
    rmSync(work, { recursive: true, force: true });
    for (const k of [files.caKey, files.key]) if (existsSync(k)) chmodSync(k, 0o600);
  }
  return files;
}
