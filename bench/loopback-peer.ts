/**
 * The far end of bench/transfer.ts's round trips in its own process, as a trainer is: either a
 * fedslice echo trainer over WebSocket (decode and validate the task, announce the update, send it
 * when granted), or a raw echo over a plain TCP or Unix socket that counts `--bytes` bytes in and
 * writes as many back, with no framing (the ceiling the kernel's socket sets). transfer.ts starts it;
 * it prints "up" once connected.
 *
 *   node --import tsx bench/loopback-peer.ts --ws URL --max-payload N
 *   node --import tsx bench/loopback-peer.ts --raw PORT_OR_PATH --bytes N
 */
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import WebSocket, { type RawData } from 'ws';
import { decode } from '../core/wire/codec.ts';
import { aggregatorToTrainer } from '../core/wire/schema.ts';
import { frameBytes, receiveFragments, sendToAggregator, unmaskedFrames } from '../core/wire/socket.ts';
import { UpdateGate } from '../core/wire/update-gate.ts';
import { echoUpdate, rawEcho } from './echo.ts';

const { values } = parseArgs({
  options: { ws: { type: 'string' }, 'max-payload': { type: 'string' }, raw: { type: 'string' }, bytes: { type: 'string' } },
});

function wsPeer(url: string, maxPayload: number): void {
  const ws = new WebSocket(url, { maxPayload, perMessageDeflate: false, ...unmaskedFrames });
  receiveFragments(ws);
  const gate = new UpdateGate((m) => sendToAggregator(ws, m));
  ws.on('message', (data: RawData) => {
    const r = decode(aggregatorToTrainer, frameBytes(data));
    if (!r.ok) throw new Error(r.error);
    if (r.msg.type === 'grant' && gate.granted(r.msg)) return;
    if (r.msg.type !== 'task') throw new Error(`got ${r.msg.type}`);
    gate.offer(echoUpdate(r.msg));
  });
  ws.once('open', () => console.log('up'));
  ws.once('close', () => process.exit(0));
}

function rawPeer(where: string, bytes: number): void {
  const socket = /^\d+$/.test(where) ? connect(Number(where), '127.0.0.1') : connect(where);
  rawEcho(socket, bytes);
  socket.once('connect', () => console.log('up'));
  socket.once('close', () => process.exit(0));
}

if (values.ws) wsPeer(values.ws, Number(values['max-payload']));
else if (values.raw) rawPeer(values.raw, Number(values.bytes));
else throw new Error('loopback-peer: give --ws URL --max-payload N or --raw PORT_OR_PATH --bytes N');
