/**
 * Frames from the aggregator to its trainers: encoded, counted both ways, and tracked until written
 * to their sockets, so the aggregator can wait for its last frames before closing.
 */
import type { WebSocket } from 'ws';
import type { AggregatorToTrainer } from '../core/wire/schema.ts';
import { sendToTrainer } from '../core/wire/socket.ts';

export interface Traffic {
  sent: number;
  received: number;
}

/** What a round loop needs to reach trainers. */
export interface Outbox<C> {
  /** Sends `msg`; returns the bytes sent (0 when the trainer is gone). */
  send(conn: C, msg: AggregatorToTrainer): number;
  /** Bytes sent to and received from trainers so far. */
  traffic(): Traffic;
  /** Whether every frame sent so far is written to its socket (none still reads the arrays it was sent from). */
  idle(): boolean;
}

export class SocketOutbox implements Outbox<WebSocket> {
  private readonly bytes: Traffic = { sent: 0, received: 0 };
  private unwritten = 0;
  private onDrained: (() => void)[] = [];

  send(conn: WebSocket, msg: AggregatorToTrainer): number {
    // ws calls back from the socket's write, never synchronously
    const bytes = sendToTrainer(conn, msg, () => this.written());
    if (bytes > 0) this.unwritten++;
    this.bytes.sent += bytes;
    return bytes;
  }

  received(bytes: number): void {
    this.bytes.received += bytes;
  }

  traffic(): Traffic {
    return { ...this.bytes };
  }

  idle(): boolean {
    return this.unwritten === 0;
  }

  /** Resolves once every frame sent so far is written to its socket (or failed), or after `ms`. */
  flush(ms: number): Promise<void> {
    if (this.unwritten === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.onDrained = this.onDrained.filter((f) => f !== done);
        resolve();
      }, ms);
      this.onDrained.push(done);
    });
  }

  private written(): void {
    this.unwritten--;
    if (this.unwritten > 0) return;
    const waiters = this.onDrained;
    this.onDrained = [];
    for (const w of waiters) w();
  }
}
