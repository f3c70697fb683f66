/**
 * Client-to-server messages on a resource's WebSocket.
 *
 * Harper's default `connect` returns the subscription stream and ignores what the client sends.
 * This reads the client's messages one at a time (so replies come back in the order the writes
 * were sent and a slow write cannot be overtaken), runs each through a write function, and answers
 * on the same socket: `{type: "ack", ...}` on success, `{type: "error", ...}` with the refusal's
 * code, field and rule otherwise. Subscription events keep their own types (put, message, delete)
 * and are interleaved with the replies in one outgoing stream.
 *
 * Backpressure (issue 13, item 7), the WebSocket counterpart of lib/serial.ts for MQTT: Harper
 * reads a WebSocket as fast as frames arrive and queues every parsed message for the resource
 * (its incoming queue has no bound and no way to slow the socket down), so a client sending
 * without waiting for replies piled writes up in server memory. Once MAX_PENDING messages of one
 * connection are unanswered (received, but their reply not yet handed to the socket), its TCP
 * socket stops being read until half of them are: TCP then slows the client down, and nothing is
 * refused or lost. Counting until the reply is handed over also bounds the replies a client that
 * does not read its socket can make the server hold.
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

/** Messages of one connection that may be unanswered before its socket is paused. */
const MAX_PENDING = Number(process.env.WS_MAX_PENDING_WRITES ?? 32);

export interface Pausable {
  pause(): unknown;
  resume(): unknown;
}

/**
 * The TCP socket under each connection's incoming queue. lib/guarded-table.ts records it when
 * Harper opens the connection (the resource's context holds the upgraded HTTP request), so every
 * table class that accepts writes gets the bound without passing the socket along.
 */
const socketOfIncoming = new WeakMap<object, Pausable>();

export function bindIncomingSocket(incoming: unknown, socket: Partial<Pausable> | undefined): void {
  if (incoming !== null && typeof incoming === 'object' && typeof socket?.pause === 'function' && typeof socket.resume === 'function') {
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

/**
 * One outgoing stream: replies first when there are any, otherwise the next subscription event.
 * Pulling (rather than pumping the subscription into a buffer) keeps Harper's own backpressure:
 * it asks for the next message only once the socket has drained.
 */
function mergeReplies(subscription: AsyncIterator<unknown>, handedOver: () => void) {
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
        if (reply) {
          handedOver();
          return { value: reply, done: false };
        }
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
  const flow = flowControl(socketOfIncoming.get(incoming as object));
  const outgoing = mergeReplies((await subscription)[Symbol.asyncIterator](), flow.answered);
  let queue: Promise<void> = Promise.resolve();
  (incoming as IncomingMessages).on('data', (message) => {
    flow.received();
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
