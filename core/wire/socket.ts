/**
 * The WebSocket edge of the wire: one typed send per direction, so a role can only send what its
 * peer decodes, and the bytes of a received frame however ws delivered them.
 */
import type { RawData, WebSocket } from 'ws';
import { encodeParts } from './codec.ts';
import type { AggregatorToTrainer, FromMetaserver, Message, ToMetaserver, TrainerToAggregator } from './schema.ts';

/**
 * Writes one binary message as fragments: the header, then each tensor straight from the sender's
 * arrays (no joined copy; a client still copies while masking). ws queues them without copying, so
 * the tensors must not change after the send; every sender sends arrays it no longer writes to.
 * Returns the bytes written (0 when the connection is no longer open, and then `onWritten` is never
 * called); `onWritten` runs once the last fragment is written to the socket, or with the error
 * that stopped it.
 */
function sendFrame(conn: WebSocket, msg: Message, onWritten?: OnWritten): number {
  if (conn.readyState !== conn.OPEN) return 0;
  const parts = encodeParts(msg);
  let bytes = 0;
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    conn.send(part, { binary: true, fin: last }, last ? onWritten : undefined);
    bytes += part.byteLength;
  });
  return bytes;
}

/** Called once a message is written to the socket, or with the error that stopped it. */
export type OnWritten = (err?: Error) => void;

export const sendToMetaserver: (conn: WebSocket, msg: ToMetaserver, onWritten?: OnWritten) => number = sendFrame;
export const sendFromMetaserver: (conn: WebSocket, msg: FromMetaserver, onWritten?: OnWritten) => number = sendFrame;
export const sendToAggregator: (conn: WebSocket, msg: TrainerToAggregator, onWritten?: OnWritten) => number = sendFrame;
export const sendToTrainer: (conn: WebSocket, msg: AggregatorToTrainer, onWritten?: OnWritten) => number = sendFrame;

/**
 * Client options for the connection that carries models (trainer to aggregator): the all-zero
 * masking key, which ws neither applies when sending (a copy and an XOR of every byte) nor undoes
 * when receiving (another pass, on the aggregator, for every trainer's update). Masking keeps
 * script in a browser from putting chosen bytes on the wire past an HTTP intermediary; a fedslice
 * client is its own process, which could write any bytes on a raw socket anyway.
 */
export const unmaskedFrames = { generateMask: (mask: Buffer): void => void mask.fill(0) };

/**
 * Makes ws hand over a message's fragments as they arrived (binaryType 'fragments') instead of
 * joining them into one new buffer: decode reads them in place.
 */
export function receiveFragments(conn: WebSocket): void {
  conn.binaryType = 'fragments';
}

/** A received message's pieces: ws hands over one Buffer, fragments, or an ArrayBuffer. Never joined. */
export function frameBytes(data: RawData): Uint8Array[] {
  if (Array.isArray(data)) return data;
  return [Buffer.isBuffer(data) ? data : new Uint8Array(data)];
}

/** The size of a received message. */
export function byteLengthOf(parts: readonly Uint8Array[]): number {
  return parts.reduce((n, p) => n + p.byteLength, 0);
}
