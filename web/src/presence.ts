/**
 * Device presence (`/presence/`, one record per device user): fed by one SSE stream on the whole
 * table, and the helpers any panel uses to grey out what belongs to an offline device.
 */
import { formatDateTime, formatTime } from './dom.js';
import type { Frame } from './types.js';

/** presence/<device>, as the server writes it (README: Device presence). */
export interface Presence {
  id: string;
  state: 'online' | 'offline';
  /** When `state` last changed, ms. */
  since: number;
  lastSeen: number;
  via: 'mqtt' | 'mqtt-ws' | 'ws';
}

type PresenceListener = (id: string, presence: Presence | undefined) => void;

export class PresenceStore {
  readonly devices = new Map<string, Presence>();
  private listeners = new Set<PresenceListener>();

  subscribe(listener: PresenceListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(frame: Frame<Presence>): void {
    const id = frame.id ?? frame.value?.id;
    if (typeof id !== 'string') return;
    const value = frame.type === 'delete' ? null : frame.value;
    if (value && (value.state === 'online' || value.state === 'offline')) this.devices.set(id, { ...value, id });
    else this.devices.delete(id);
    for (const listener of this.listeners) listener(id, this.devices.get(id));
  }

  clear(): void {
    this.devices.clear();
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
