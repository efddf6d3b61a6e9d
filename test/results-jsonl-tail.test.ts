// Following a JSON Lines file as it grows: whole lines only, a line written in pieces shows once,
// unparsable lines are skipped and counted, and a file that shrank is read again.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { JsonLinesTail } from '../core/results/jsonl-tail.ts';
import { appendJsonLine } from '../core/results/jsonl.ts';
import { tempDir } from './helpers/roles.ts';

describe('JsonLinesTail', () => {
  it('returns the records appended since the last read, whole lines only', () => {
    const path = join(tempDir('fedslice-tail-'), 'x.jsonl');
    const tail = new JsonLinesTail<{ n: number }>(path);
    expect(tail.read()).toEqual({ records: [], restarted: false }); // no file yet
    appendJsonLine(path, { n: 1 });
    appendJsonLine(path, { n: 2 });
    expect(tail.read().records).toEqual([{ n: 1 }, { n: 2 }]);
    expect(tail.read().records).toEqual([]);
    appendFileSync(path, '{"n":'); // a writer midway
    expect(tail.read().records).toEqual([]);
    expect(tail.pendingBytes).toBe(5);
    appendFileSync(path, '3}\n');
    expect(tail.read().records).toEqual([{ n: 3 }]);
    expect(tail.torn).toEqual([]);
  });

  it('skips and reports a torn line once the next append follows it', () => {
    const path = join(tempDir('fedslice-tail-'), 'x.jsonl');
    const tail = new JsonLinesTail<{ n: number }>(path);
    appendJsonLine(path, { n: 1 });
    appendFileSync(path, '{"n": 2, "cut'); // a writer died mid-line
    expect(tail.read().records).toEqual([{ n: 1 }]);
    appendJsonLine(path, { n: 3 }); // starts on a new line after the torn one
    expect(tail.read().records).toEqual([{ n: 3 }]);
    expect(tail.torn).toEqual([{ line: 2, text: '{"n": 2, "cut', last: false }]);
  });

  it('reads a file that shrank again from its start', () => {
    const path = join(tempDir('fedslice-tail-'), 'x.jsonl');
    const tail = new JsonLinesTail<{ n: number }>(path);
    writeFileSync(path, '{"n":1}\n{"n":2}\n');
    expect(tail.read().records).toHaveLength(2);
    writeFileSync(path, '{"n":9}\n');
    expect(tail.read()).toEqual({ records: [{ n: 9 }], restarted: true });
  });

  it('reads a file larger than its chunk in one call, lines split across chunks included', () => {
    const path = join(tempDir('fedslice-tail-'), 'x.jsonl');
    const line = (i: number) => JSON.stringify({ n: i, pad: 'x'.repeat(100 + (i % 7)) }) + '\n';
    writeFileSync(path, Array.from({ length: 50_000 }, (_, i) => line(i)).join(''));
    const tail = new JsonLinesTail<{ n: number }>(path);
    const got = tail.read().records;
    expect(got).toHaveLength(50_000);
    expect(got.every((r, i) => r.n === i)).toBe(true);
  });
});
