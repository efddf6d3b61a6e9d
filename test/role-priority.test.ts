// An aggregator asked to yield (FEDSLICE_AGGREGATOR_NICE, which the runner sets when the trainers
// take every core) runs every thread of its process at that nice value; a bad value is one clear error.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { niceOf } from '../core/role-priority.ts';
import { startTestBed, writeConfig } from './helpers/experiment.ts';
import { startRole, stopAll, type Role } from './helpers/roles.ts';

let dir: string;
let dataDir: string;
let metaserver: Role;
let metaUrl: string;

beforeAll(async () => {
  ({ dir, dataDir, metaserver, metaUrl } = await startTestBed('fedslice-nice-'));
});
afterAll(() => stopAll());

/** The nice value of each thread of a process (field 19 of /proc/PID/task/TID/stat). */
const threadNices = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });

const aggregator = (name: string, env: Record<string, string>) => {
  const cfg = writeConfig(dir, `${name}.json`, { dataDir, name, worldSize: 1 });
  return startRole('aggregator', ['aggregator', '--config', cfg, '--metaserver', metaUrl, '--results', join(dir, `results-${name}`)], { FEDSLICE_TOKEN: 't', ...env });
};

describe('aggregator priority', () => {
  it('sets every thread to FEDSLICE_AGGREGATOR_NICE, and leaves it alone without', async () => {
    const low = aggregator('low', { FEDSLICE_AGGREGATOR_NICE: '19' });
    const own = aggregator('own', {});
    await Promise.all([low, own].map((r) => r.waitFor(/waiting for 1 trainer/)));
    const [lowNices, ownNices] = [low, own].map((r) => threadNices(r.child.pid!));
    expect(lowNices.length).toBeGreaterThan(1);
    expect(new Set(lowNices)).toEqual(new Set([19]));
    expect(new Set(ownNices)).toEqual(new Set([Math.min(...ownNices)]));
    expect(ownNices[0]).toBeLessThan(19);
  });

  it('refuses a value that is not a nice value with one line', async () => {
    const bad = aggregator('bad', { FEDSLICE_AGGREGATOR_NICE: 'high' });
    const { code } = await bad.exited;
    expect(code).not.toBe(0);
    expect(bad.output()).toMatch(/FEDSLICE_AGGREGATOR_NICE must be a whole number from 0 to 19 \(a nice value\), got 'high'/);
    expect(() => niceOf({ X: '20' }, 'X')).toThrow(/got '20'/);
    expect(() => niceOf({ X: '-1' }, 'X')).toThrow(/got '-1'/);
    expect(niceOf({}, 'X')).toBe(0);
    expect(niceOf({ X: ' 7 ' }, 'X')).toBe(7);
  });
});
