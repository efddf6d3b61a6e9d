/**
 * A role the sweep runner starts ahead of its run (a warm spare, runner/local-executor.ts): with
 * FEDSLICE_HOLD=1 in its environment it does the part of its start-up that touches nothing shared
 * (node, its modules, the config, the compute backend, its data), then waits for the line "go" on its stdin
 * before it reads the results store or contacts anyone. The runner sends it when the run starts.
 * If stdin closes without "go" (the runner ended the spare, or died), the role exits at once.
 */
export const HOLD_ENV = 'FEDSLICE_HOLD';
export const GO_LINE = 'go';

/** Whether this process was started held; cleared once it goes, so a child of the role is not. */
export const isHeld = (env = process.env): boolean => env[HOLD_ENV] === '1';

/**
 * If this process was started held: runs `prepare`, waits for the runner's go (or exits when the
 * runner closes stdin without one) and returns what `prepare` made. Otherwise returns undefined
 * at once, without `prepare` (the role prepares as it starts).
 */
export async function holdForGo<T>(prepare: () => Promise<T>, log: (line: string) => void): Promise<T | undefined> {
  if (!isHeld()) return undefined;
  delete process.env[HOLD_ENV];
  const prepared = await prepare();
  log('fedslice: started ahead of the run; waiting for the runner to start it');
  const go = await readGo(process.stdin);
  if (!go) process.exit(0); // a spare never started: nothing ran, nothing to record
  log('fedslice: go');
  return prepared;
}

/** True at a line "go", false when the stream ends (or fails) before one. */
export function readGo(input: NodeJS.ReadableStream & { destroy?: () => void }): Promise<boolean> {
  return new Promise((resolve) => {
    let text = '';
    const finish = (go: boolean) => {
      input.removeListener('data', onData);
      input.removeListener('end', onEnd);
      input.removeListener('error', onEnd);
      input.destroy?.();
      resolve(go);
    };
    const onData = (chunk: Buffer | string) => {
      text += chunk.toString();
      const lines = text.split('\n');
      if (lines.slice(0, -1).some((l) => l.trim() === GO_LINE)) finish(true);
    };
    const onEnd = () => finish(false);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onEnd);
  });
}
