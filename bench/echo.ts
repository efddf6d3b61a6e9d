/** The far end of bench/transfer.ts's round trips, shared by its in-process and own-process peers. */
import type { Socket } from 'node:net';
import type { MessageOf } from '../core/wire/schema.ts';

const metrics = { trainLoss: 1, trainSeconds: 1, samplesPerSecond: 1, steps: 1 };

/** A trainer's update that echoes the task's weights as its delta (no training). */
export const echoUpdate = (t: MessageOf<'task'>): MessageOf<'update'> => ({
  type: 'update', job: t.job, round: t.round, rank: t.rank, delta: t.weights, numSamples: 1, metrics,
});

/** No framing: each time `bytes` bytes have come in on `socket`, writes as many back. */
export function rawEcho(socket: Socket, bytes: number): void {
  const out = new Uint8Array(bytes).fill(1);
  let got = 0;
  socket.on('data', (chunk: Buffer) => {
    got += chunk.byteLength;
    if (got < bytes) return;
    got -= bytes;
    socket.write(out);
  });
}
