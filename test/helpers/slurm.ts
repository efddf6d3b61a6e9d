/**
 * A one-node Slurm cluster for tests, from Debian's slurm-wlm and munge, run as root in a temp
 * folder: its own munge key and socket, a generated slurm.conf on free ports, slurmctld and
 * slurmd in the foreground as children. Commands reach it through SLURM_CONF.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { join } from 'node:path';

export interface SlurmCluster {
  dir: string;
  /** Environment every Slurm command (and a sweep using --executor slurm) needs. */
  env: Record<string, string>;
  /** Job ids squeue lists whose name starts with `prefix`. */
  jobs(prefix?: string): string[];
  stop(): Promise<void>;
}

const DAEMONS = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scontrol', 'scancel'];

function onPath(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: withSbin(process.env) }).status === 0;
}

function withSbin(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return { ...env, PATH: `${env.PATH ?? ''}:/usr/sbin:/sbin` };
}

/** Why a cluster cannot be started here, or null when it can. */
export function slurmUnavailable(): string | null {
  if (process.platform !== 'linux') return 'Slurm tests need Linux';
  if (process.getuid?.() !== 0) return 'Slurm tests start slurmctld/slurmd and need root';
  const missing = DAEMONS.filter((c) => !onPath(c));
  if (missing.length) return `Slurm tests skipped: ${missing.join(', ')} not installed (apt-get install slurm-wlm munge; .ci/run does this)`;
  return null;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Two consecutive free ports (slurmctld, slurmd). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const p = await freePort();
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(p + 1, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok && p < 65535) return p;
  }
}

async function until(what: string, check: () => boolean, timeoutMs: number, logs: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`slurm test cluster: ${what} not within ${timeoutMs} ms\n${logs()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function startSlurm(dir: string): Promise<SlurmCluster> {
  const node = hostname().split('.')[0];
  for (const d of ['munge', 'state', 'spool']) mkdirSync(join(dir, d), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o755); // munged refuses a socket folder others can write, and needs to reach it
  const key = join(dir, 'munge', 'munge.key');
  execFileSync('dd', ['if=/dev/urandom', `of=${key}`, 'bs=1024', 'count=1'], { stdio: 'ignore' });
  chmodSync(key, 0o400);
  const socket = join(dir, 'munge', 'munge.sock');
  const children: ChildProcess[] = [];
  const env = { ...withSbin(process.env), SLURM_CONF: join(dir, 'slurm.conf') } as Record<string, string>;
  const logOf = (name: string) => (existsSync(join(dir, name)) ? `--- ${name}\n${readFileSync(join(dir, name), 'utf8').split('\n').slice(-15).join('\n')}` : '');
  const logs = () => ['munged.log', 'slurmctld.log', 'slurmd.log'].map(logOf).join('\n');

  const munged = spawn('munged', ['--foreground', '--force', `--socket=${socket}`, `--key-file=${key}`, `--pid-file=${join(dir, 'munge', 'munged.pid')}`, `--log-file=${join(dir, 'munged.log')}`, `--seed-file=${join(dir, 'munge', 'seed')}`], { env, stdio: 'ignore' });
  children.push(munged);
  const cluster = { stop: async () => stopChildren(children, env) };
  try {
    await until('munged socket', () => existsSync(socket), 10_000, logs);
    const port = await freePortPair();
    writeFileSync(
      env.SLURM_CONF,
      [
        'ClusterName=fedslicetest',
        `SlurmctldHost=${node}`,
        `SlurmctldPort=${port}`,
        `SlurmdPort=${port + 1}`,
        'AuthType=auth/munge',
        'CredType=cred/munge',
        `AuthInfo=socket=${socket}`,
        'SlurmUser=root',
        'SlurmdUser=root',
        `StateSaveLocation=${join(dir, 'state')}`,
        `SlurmdSpoolDir=${join(dir, 'spool')}`,
        `SlurmctldPidFile=${join(dir, 'slurmctld.pid')}`,
        `SlurmdPidFile=${join(dir, 'slurmd.pid')}`,
        `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`,
        `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
        'ProctrackType=proctrack/linuxproc',
        'TaskPlugin=task/none',
        'SelectType=select/cons_tres',
        'SelectTypeParameters=CR_Core',
        'SchedulerType=sched/builtin',
        'AccountingStorageType=accounting_storage/none',
        'JobAcctGatherType=jobacct_gather/none',
        'JobCompType=jobcomp/none',
        'MpiDefault=none',
        'ReturnToService=2',
        'SlurmdParameters=config_overrides',
        'SchedulerParameters=sched_interval=1',
        'MinJobAge=300',
        'KillWait=5',
        // More CPUs than the machine has: a test job of 1 + W tasks runs on a 2-core runner.
        `NodeName=${node} NodeAddr=127.0.0.1 CPUs=16 RealMemory=4000 State=UNKNOWN`,
        `PartitionName=debug Nodes=${node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE`,
        '',
      ].join('\n'),
    );
    children.push(spawn('slurmctld', ['-D', '-i', '-f', env.SLURM_CONF], { env, stdio: 'ignore' }));
    await until('slurmctld answering', () => spawnSync('scontrol', ['ping'], { env, encoding: 'utf8' }).stdout?.includes('UP') ?? false, 30_000, logs);
    children.push(spawn('slurmd', ['-D', '-f', env.SLURM_CONF, '-N', node], { env, stdio: 'ignore' }));
    await until('the node idle in sinfo', () => /idle/.test(spawnSync('sinfo', ['-h', '-o', '%T'], { env, encoding: 'utf8' }).stdout ?? ''), 30_000, logs);
  } catch (e) {
    await cluster.stop();
    throw e;
  }
  return {
    dir,
    env,
    jobs: (prefix = '') =>
      (spawnSync('squeue', ['-h', '-o', '%i %j'], { env, encoding: 'utf8' }).stdout ?? '')
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .filter(([id, name]) => id && (name ?? '').startsWith(prefix))
        .map(([id]) => id),
    stop: cluster.stop,
  };
}

/** Cancels every job, waits for the queue to empty (bounded), then ends the daemons. */
async function stopChildren(children: ChildProcess[], env: Record<string, string>): Promise<void> {
  if (children.length > 1) {
    spawnSync('scancel', ['--full', '--user', 'root'], { env, stdio: 'ignore' });
    const end = Date.now() + 20_000;
    while (Date.now() < end && (spawnSync('squeue', ['-h'], { env, encoding: 'utf8' }).stdout ?? '').trim()) await new Promise((r) => setTimeout(r, 300));
  }
  for (const c of children.reverse()) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}
