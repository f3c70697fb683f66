/**
 * Client-to-server messages on a resource's WebSocket.
 *
 * Harper's default `connect` returns the subscription stream and ignores what the client sends.
 * This runs each of the client's messages through a write function and answers on the same
 * socket, in the order the messages were sent: `{type: "ack", ...}` on success, `{type: "error",
 * ...}` with the refusal's code, field and rule otherwise. Writes run one at a time, or, for a
 * resource that keeps each record's write order itself (`concurrent`), each as it arrives, so
 * that it can share a group commit with the ones after it. Replies go into the subscription's own event queue, so they
 * reach the client in one stream with the subscription's events (which keep their own types:
 * put, message, delete), under Harper's backpressure, at no cost per event.
 */
import { logger } from 'harperdb';
import { isRefusal, type RefusalBody } from './errors.js';

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

export async function acceptWebSocketWrites(
  subscription: AsyncIterable<unknown> | Promise<AsyncIterable<unknown>>,
  incoming: unknown,
  write: (message: unknown) => Promise<WriteAck>,
  options: { concurrent?: boolean } = {},
): Promise<AsyncIterable<unknown>> {
  const outgoing = (await subscription) as OutgoingQueue;
  const reply = (message: Reply): void => void outgoing.send(message);
  let replied: Promise<void> = Promise.resolve();
  const settle = (written: Promise<WriteAck>): Promise<Reply> =>
    written.then(
      (ack): Reply => ack,
      (error: unknown): Reply => {
        if (isRefusal(error)) return { type: 'error', ...error.toJSON() };
        logger.error?.('WebSocket write failed', error);
        return { type: 'error', error: 'write_failed', message: 'the server could not store this message' };
      },
    );
  (incoming as IncomingMessages).on('data', (message) => {
    if (options.concurrent) {
      const result = settle(write(message));
      replied = replied.then(() => result.then(reply));
    } else {
      replied = replied.then(() => settle(write(message)).then(reply));
    }
  });
  return outgoing;
}
