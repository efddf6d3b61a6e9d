// JSON Lines of the results store: an append never continues a torn line, readers report torn
// lines wherever they are, and the append lock survives a writer that died holding it.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appendJsonLine, readJsonLines } from '../core/results/jsonl.ts';
import { asStorageError, StorageError } from '../core/results/storage-error.ts';
import { tempDir } from './helpers/roles.ts';

const dir = tempDir('fedslice-jsonl-');

/** A pid that was real and is now gone. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('appendJsonLine', () => {
  it('starts a new line after a torn last line, so the torn line cannot swallow the record', () => {
    const file = join(dir, 'torn-last.jsonl');
    writeFileSync(file, '{"n":1}\n{"n":2,"cut sh');
    appendJsonLine(file, { n: 3 });
    expect(readFileSync(file, 'utf8')).toBe('{"n":1}\n{"n":2,"cut sh\n{"n":3}\n');
    const read = readJsonLines<{ n: number }>(file);
    expect(read.records.map((r) => r.n)).toEqual([1, 3]);
    expect(read.torn).toEqual([{ line: 2, text: '{"n":2,"cut sh', last: false }]);
  });

  it('adds no newline to a file that ends clean, nor to a new one', () => {
    const file = join(dir, 'clean.jsonl');
    appendJsonLine(file, { n: 1 });
    appendJsonLine(file, { n: 2 });
    expect(readFileSync(file, 'utf8')).toBe('{"n":1}\n{"n":2}\n');
    expect(existsSync(`${file}.lock`)).toBe(false);
  });

  it('takes over the lock of a writer that died holding it', () => {
    const file = join(dir, 'stale-lock.jsonl');
    symlinkSync(`${hostname()}:${deadPid()}`, `${file}.lock`);
    appendJsonLine(file, { n: 1 });
    expect(readJsonLines(file).records).toEqual([{ n: 1 }]);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
});

describe('readJsonLines', () => {
  it('reports torn lines anywhere with their line numbers, and a torn last line as last', () => {
    const file = join(dir, 'torn-anywhere.jsonl');
    writeFileSync(file, '{"n":1}\n{"n":2,"a{"n":3}\n\n{"n":4}\n{"n":5');
    const read = readJsonLines<{ n: number }>(file);
    expect(read.records.map((r) => r.n)).toEqual([1, 4]);
    expect(read.torn).toEqual([
      { line: 2, text: '{"n":2,"a{"n":3}', last: false },
      { line: 5, text: '{"n":5', last: true },
    ]);
  });

  it('reads a missing file as empty', () => {
    expect(readJsonLines(join(dir, 'missing.jsonl'))).toEqual({ records: [], torn: [] });
  });
});

describe('storage faults', () => {
  const fault = (code: string) => Object.assign(new Error(`${code}: fault`), { code });

  it('become one line naming what happened, where, and what to do', () => {
    const full = asStorageError(fault('ENOSPC'), '/r/runs.jsonl');
    expect(full).toBeInstanceOf(StorageError);
    expect((full as StorageError).message).toBe('results disk full at /r: free space and rerun the same command to resume');
    expect((full as StorageError).exitCode).toBe(74);
    expect((full as StorageError).naming('/results').message).toBe('results disk full at /results: free space and rerun the same command to resume');
    expect((asStorageError(fault('EACCES'), '/r/x', 'read') as StorageError).message).toMatch(/^no permission to read \/r\/x: fix the permissions of \/r/);
    expect((asStorageError(fault('EROFS'), '/r/x') as StorageError).code).toBe('FEDSLICE_ERR_READ_ONLY');
    expect((asStorageError(fault('EDQUOT'), '/r/x') as StorageError).code).toBe('FEDSLICE_ERR_DISK_QUOTA');
    expect((asStorageError(fault('EMFILE'), '/r/x') as StorageError).message).toMatch(/too many open files .*ulimit -n/);
  });

  it('leave other errors alone', () => {
    const bug = new TypeError('x is undefined');
    expect(asStorageError(bug, '/r/x')).toBe(bug);
    expect(asStorageError(fault('toString'), '/r/x')).not.toBeInstanceOf(StorageError);
  });
});
