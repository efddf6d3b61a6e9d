/**
 * Preloaded into the sweep and every role it starts by bench/sweep-overhead.ts (NODE_OPTIONS=
 * --import): each stderr line (a role's log) gets the epoch time in ms in front, "@<ms> ", and the
 * process writes one line when it starts (with the time node itself started) and one at exit.
 */
const write = process.stderr.write.bind(process.stderr);
const stamp = (line) => `@${Date.now()} ${line}`;
write(`${stamp(`stamp: node started @${Math.round(performance.timeOrigin)}`)}\n`);
process.stderr.write = (chunk, ...rest) =>
  write(typeof chunk === 'string' ? chunk.replace(/^(?=.)/gm, () => `@${Date.now()} `) : chunk, ...rest);
process.on('exit', () => write(`${stamp('stamp: exit')}\n`));
