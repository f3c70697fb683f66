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
import { forbidden, isRefusal, type RefusalBody } from '../rules/errors.js';
import { countWriteAccepted, countWriteRefused } from '../metrics/counters.js';
import { deniedMessage, may, type Resource } from '../access/policy.js';
import { userOf, type User } from '../harper/types.js';

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

/**
 * The steps of a table's WebSocket write that differ by table. `check` applies the table's rules
 * to a message (`id` is the socket's record id, or on the table's socket the id the message
 * names); `place` takes the checked write's place in its record's order as it arrives, and
 * returns how to store it there (or give the place up, when the write is refused first).
 */
export interface WriteSteps<Checked extends { id: string }> {
  resource: Resource;
  check(id: unknown, message: unknown): Checked;
  place(checked: Checked, user: User | undefined): { store(): Promise<WriteAck>; cancel(): void };
  /** Whether messages are written as they arrive (the table keeps each record's order itself). */
  concurrent?: boolean;
}

/**
 * A table's WebSocket writes: each message checked, placed in its record's order, authorised,
 * stored and answered. The record is written straight to the table (it is already checked), so
 * the write asks the same policy question Harper asks for every other protocol's write.
 */
export function acceptTableWrites<Checked extends { id: string }>(
  resource: { getId(): unknown; getContext(): unknown },
  outgoing: AsyncIterable<unknown> | Promise<AsyncIterable<unknown>>,
  incoming: unknown,
  steps: WriteSteps<Checked>,
): Promise<AsyncIterable<unknown>> {
  const pathId = resource.getId();
  const user = userOf(resource);
  const write = async (message: unknown): Promise<WriteAck> => {
    const id =
      pathId ?? (message !== null && typeof message === 'object' ? (message as { id?: unknown }).id : undefined);
    const checked = steps.check(id, message);
    const placed = steps.place(checked, user);
    try {
      if (!(await may(user, steps.resource, 'write', checked.id)))
        throw forbidden(deniedMessage(user, 'write', `${steps.resource} "${checked.id}"`));
      return await placed.store();
    } finally {
      placed.cancel(); // no-op once the write was handed on
    }
  };
  return acceptWebSocketWrites(outgoing, incoming, write, { concurrent: steps.concurrent });
}
