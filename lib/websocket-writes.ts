/**
 * Client-to-server messages on a resource's WebSocket.
 *
 * Harper's default `connect` returns the subscription stream and ignores what the client sends.
 * This reads the client's messages one at a time (so replies come back in the order the writes
 * were sent and a slow write cannot be overtaken), runs each through a write function, and answers
 * on the same socket: `{type: "ack", ...}` on success, `{type: "error", ...}` with the refusal's
 * code, field and rule otherwise. Subscription events keep their own types (put, message, delete)
 * and are interleaved with the replies in one outgoing stream.
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

/**
 * One outgoing stream: replies first when there are any, otherwise the next subscription event.
 * Pulling (rather than pumping the subscription into a buffer) keeps Harper's own backpressure:
 * it asks for the next message only once the socket has drained.
 */
function mergeReplies(subscription: AsyncIterator<unknown>) {
  const replies: Reply[] = [];
  let wake: (() => void) | undefined;
  let pendingEvent: Promise<IteratorResult<unknown>> | undefined;
  const stream = {
    [Symbol.asyncIterator]() {
      return stream;
    },
    async next(): Promise<IteratorResult<unknown>> {
      for (;;) {
        const reply = replies.shift();
        if (reply) return { value: reply, done: false };
        pendingEvent ??= subscription.next();
        const replyArrived = new Promise<'reply'>((resolve) => (wake = () => resolve('reply')));
        const winner = await Promise.race([pendingEvent, replyArrived]);
        wake = undefined;
        if (winner !== 'reply') {
          pendingEvent = undefined;
          return winner;
        }
      }
    },
    async return(value?: unknown): Promise<IteratorResult<unknown>> {
      await subscription.return?.();
      return { value, done: true };
    },
    reply(message: Reply): void {
      replies.push(message);
      wake?.();
    },
  };
  return stream;
}

export async function acceptWebSocketWrites(
  subscription: AsyncIterable<unknown> | Promise<AsyncIterable<unknown>>,
  incoming: unknown,
  write: (message: unknown) => Promise<WriteAck>,
): Promise<AsyncIterable<unknown>> {
  const outgoing = mergeReplies((await subscription)[Symbol.asyncIterator]());
  let queue: Promise<void> = Promise.resolve();
  (incoming as IncomingMessages).on('data', (message) => {
    queue = queue.then(async () => {
      try {
        outgoing.reply(await write(message));
      } catch (error) {
        if (isRefusal(error)) {
          outgoing.reply({ type: 'error', ...error.toJSON() });
        } else {
          logger.error?.('WebSocket write failed', error);
          outgoing.reply({ type: 'error', error: 'write_failed', message: 'the server could not store this message' });
        }
      }
    });
  });
  return outgoing;
}
