/**
 * Client-to-server messages on a resource's WebSocket.
 *
 * Harper's default `connect` returns the subscription stream and ignores what the client sends.
 * This runs each of the client's messages through a write function and answers on the same
 * socket, in the order the messages were sent: `{type: "ack", ...}` on success, `{type: "error",
 * ...}` with the refusal's code, field and rule otherwise. Writes run one at a time, or, for a
 * resource that keeps each record's write order itself (`concurrent`), each as it arrives, so
 * that it can share a group commit with the ones after it. Replies go into the subscription's
 * own event queue, so they reach the client in one stream with the subscription's events (which
 * keep their own types: put, message, delete), under Harper's backpressure, at no cost per event.
 *
 * Backpressure, the WebSocket counterpart of lib/write-path/publisher-backpressure.ts for MQTT: Harper reads a
 * WebSocket as fast as frames arrive and queues every parsed message for the resource (its
 * incoming queue has no bound and no way to slow the socket down), so a client sending without
 * waiting for replies piled writes up in server memory. Once MAX_PENDING messages of one
 * connection are unanswered (received, but their reply not yet queued for the socket), its TCP
 * socket stops being read until half of them are: TCP then slows the client down, and nothing is
 * refused or lost. Replies a client does not read wait in the subscription's queue, which
 * lib/streams/slow-consumers.ts bounds.
 */
import { logger } from 'harperdb';
import { isRefusal, type RefusalBody } from '../rules/errors.js';
import { countWriteAccepted, countWriteRefused } from '../metrics/counters.js';

export interface WriteAck {
  type: 'ack';
  id: string;
  updatedAt: number;
}

export type WriteError = { type: 'error' } & RefusalBody;
type Reply = WriteAck | WriteError;

/** Harper's queue of incoming WebSocket messages (already parsed by content type). */
interface IncomingMessages {
  on(event: 'data', listener: (message: unknown) => void): unknown;
}

/** The subscription Harper streams to the socket: an event queue that takes more events. */
interface OutgoingQueue extends AsyncIterable<unknown> {
  send(event: unknown): unknown;
}

/** Messages of one connection that may be unanswered before its socket is paused. */
const MAX_PENDING = Number(process.env.WS_MAX_PENDING_WRITES ?? 32);

export interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

/**
 * The TCP socket under each connection's incoming queue. lib/access/guarded-table.ts records it when
 * Harper opens the connection (the resource's context holds the upgraded HTTP request), so every
 * table class that accepts writes gets the bound without passing the socket along.
 */
const socketOfIncoming = new WeakMap<object, Pausable>();

export function bindIncomingSocket(incoming: unknown, socket: Partial<Pausable> | undefined): void {
  if (
    incoming !== null &&
    typeof incoming === 'object' &&
    typeof socket?.pause === 'function' &&
    typeof socket.resume === 'function'
  ) {
    socketOfIncoming.set(incoming, socket as Pausable);
  }
}

/** Counts a connection's unanswered messages; pauses and resumes its socket around the bound. */
function flowControl(socket: Pausable | undefined) {
  let pending = 0;
  let paused = false;
  return {
    received(): void {
      pending++;
      // Paused again on every message over the bound: ws resumes a socket itself when its own
      // frame buffer drains, and frames already read keep arriving for a moment.
      if (socket && pending >= MAX_PENDING) {
        paused = true;
        socket.pause();
      }
    },
    answered(): void {
      pending--;
      if (socket && paused && pending <= MAX_PENDING / 2) {
        paused = false;
        socket.resume();
      }
    },
  };
}

export async function acceptWebSocketWrites(
  subscription: AsyncIterable<unknown> | Promise<AsyncIterable<unknown>>,
  incoming: unknown,
  write: (message: unknown) => Promise<WriteAck>,
  options: { concurrent?: boolean } = {},
): Promise<AsyncIterable<unknown>> {
  const flow = flowControl(socketOfIncoming.get(incoming as object));
  const outgoing = (await subscription) as OutgoingQueue;
  const reply = (message: Reply): void => {
    flow.answered();
    outgoing.send(message);
  };
  let replied: Promise<void> = Promise.resolve();
  const settle = (written: Promise<WriteAck>): Promise<Reply> =>
    written.then(
      (ack): Reply => {
        countWriteAccepted('websocket');
        return ack;
      },
      (error: unknown): Reply => {
        countWriteRefused('websocket', isRefusal(error) ? error.error : 'write_failed');
        if (isRefusal(error)) return { type: 'error', ...error.toJSON() };
        logger.error?.('WebSocket write failed', error);
        return { type: 'error', error: 'write_failed', message: 'the server could not store this message' };
      },
    );
  (incoming as IncomingMessages).on('data', (message) => {
    flow.received();
    if (options.concurrent) {
      const result = settle(write(message));
      replied = replied.then(() => result.then(reply));
    } else {
      replied = replied.then(() => settle(write(message)).then(reply));
    }
  });
  return outgoing;
}
