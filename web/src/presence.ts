/**
 * Device presence, as the server keeps it in `presence/<device username>` (online or offline, since
 * when): one WebSocket subscription on the whole table, its current state first, then every
 * change; and the helpers any panel uses to grey out or qualify what belongs to an offline device.
 * WebSocket rather than SSE because a browser opens at most six HTTP/1.1 connections per site and
 * the other streams hold several. A device without a record, or a server without the table (the
 * path then belongs to the catch-all topic space, whose records have no presence state), is
 * "unknown", which nothing greys out.
 */
import { formatDateTime, formatTime } from './dom.js';
import { WsTransport } from './transport/ws.js';
import type { Frame, PresenceRecord } from './types.js';

export type Presence = PresenceRecord;
export type PresenceState = Presence['state'] | 'unknown';
type PresenceListener = (id: string, presence: Presence | undefined) => void;

function isPresence(value: unknown): value is Presence {
  const state = (value as { state?: unknown } | null)?.state;
  return value !== null && typeof value === 'object' && (state === 'online' || state === 'offline');
}

export class PresenceStore {
  readonly devices = new Map<string, Presence>();
  private readonly listeners = new Set<PresenceListener>();
  private stream: WsTransport<Presence> | undefined;

  start(onStream: (stream: WsTransport<Presence>) => void, onSignedOut: () => void): void {
    this.stream = new WsTransport<Presence>({
      label: 'Devices',
      path: '/presence/',
      onFrame: (frame) => this.apply(frame),
      onSignedOut,
    });
    onStream(this.stream);
    this.stream.start();
  }

  stop(): void {
    this.stream?.stop();
    this.stream = undefined;
    this.devices.clear();
  }

  stateOf(device: string): PresenceState {
    return this.devices.get(device)?.state ?? 'unknown';
  }

  /** Calls `listener` with each device whose presence changed; returns the unsubscribe. */
  subscribe(listener: PresenceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(frame: Frame<Presence>): void {
    const id = frame.id ?? frame.value?.id;
    if (typeof id !== 'string') return;
    if (frame.type === 'delete' || frame.value === null) this.devices.delete(id);
    else if (isPresence(frame.value)) this.devices.set(id, { ...frame.value, id });
    else return;
    for (const listener of this.listeners) listener(id, this.devices.get(id));
  }
}

/** The presence of the device that owns a sensor or sign: the device named like it. */
export function presenceOf(store: PresenceStore, recordId: string): Presence | undefined {
  return store.devices.get(recordId);
}

/** Whether a record's device is known to be offline (no presence record: not known, not greyed). */
export function isOffline(presence: Presence | undefined): presence is Presence {
  return presence?.state === 'offline';
}

/** "Device offline since 14:02:11" (the date too when it was not today), or '' when not offline. */
export function offlineLabel(presence: Presence | undefined, now = Date.now()): string {
  if (!isOffline(presence)) return '';
  const sameDay = new Date(presence.since).toDateString() === new Date(now).toDateString();
  return `Device offline since ${sameDay ? formatTime(presence.since) : formatDateTime(presence.since)}`;
}
