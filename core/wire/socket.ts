/**
 * The WebSocket edge of the wire: one typed send per direction, so a role can only send what its
 * peer decodes, and the bytes of a received frame however ws delivered them.
 */
import type { RawData, WebSocket } from 'ws';
import { encode } from './codec.ts';
import type { AggregatorToTrainer, FromMetaserver, Message, ToMetaserver, TrainerToAggregator } from './schema.ts';

/** Writes one binary frame; returns the bytes written (0 when the connection is no longer open). */
function sendFrame(conn: WebSocket, msg: Message): number {
  if (conn.readyState !== conn.OPEN) return 0;
  const frame = encode(msg);
  conn.send(frame);
  return frame.byteLength;
}

export const sendToMetaserver: (conn: WebSocket, msg: ToMetaserver) => number = sendFrame;
export const sendFromMetaserver: (conn: WebSocket, msg: FromMetaserver) => number = sendFrame;
export const sendToAggregator: (conn: WebSocket, msg: TrainerToAggregator) => number = sendFrame;
export const sendToTrainer: (conn: WebSocket, msg: AggregatorToTrainer) => number = sendFrame;

/** A received message's bytes: ws hands over one Buffer, fragments, or an ArrayBuffer. */
export function frameBytes(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
