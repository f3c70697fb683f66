/**
 * Device presence, as the server keeps it in `presence/<device username>` (online or offline,
 * since when): one WebSocket subscription on the whole table, its current state first, then
 * every change. WebSocket rather than SSE because a browser opens at most six HTTP/1.1
 * connections per site and the other streams hold several. A device without a record, or a
 * server without the table (the path then belongs to the catch-all topic space, whose records
 * have no presence state), is "unknown".
 */
import { LiveStream } from './stream.js';
import type { Frame, PresenceRecord } from './types.js';

export type PresenceState = PresenceRecord['state'] | 'unknown';

function isPresence(value: unknown): value is PresenceRecord {
  const state = (value as { state?: unknown } | null)?.state;
  return value !== null && typeof value === 'object' && (state === 'online' || state === 'offline');
}

export class PresenceStore {
  private readonly records = new Map<string, PresenceRecord>();
  private readonly listeners = new Set<() => void>();
  private stream: LiveStream<PresenceRecord> | undefined;

  start(onStream: (stream: LiveStream<PresenceRecord>) => void, onSignedOut: () => void): void {
    this.stream = new LiveStream<PresenceRecord>({ label: 'Presence', transport: 'ws', path: '/presence/', onFrame: (frame) => this.apply(frame), onSignedOut });
    onStream(this.stream);
    this.stream.start();
  }

  stop(): void {
    this.stream?.stop();
    this.stream = undefined;
    this.records.clear();
  }

  stateOf(device: string): PresenceState {
    return this.records.get(device)?.state ?? 'unknown';
  }

  subscribe(listener: () => void): void {
    this.listeners.add(listener);
  }

  private apply(frame: Frame<PresenceRecord>): void {
    const id = frame.id ?? frame.value?.id;
    if (typeof id !== 'string') return;
    if (frame.type === 'delete' || frame.value === null) this.records.delete(id);
    else if (isPresence(frame.value)) this.records.set(id, { ...frame.value, id });
    else return;
    for (const listener of this.listeners) listener();
  }
}
