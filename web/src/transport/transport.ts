/**
 * What a live connection is to the panels and the status bar, whichever protocol carries it:
 * SSE (sse.ts), WebSocket (ws.ts) or MQTT over WebSocket (mqtt.ts). Each reports its events as
 * frames and its state in words, reconnects by itself (reconnect.ts) and can be told to reconnect
 * at once. The panels never see an EventSource, a WebSocket or an MQTT client.
 */
import type { Frame } from '../types.js';
import { Reconnect } from './reconnect.js';

/**
 * `waiting`: an SSE request that has not failed but has not had an event either (Harper sends an
 * SSE response's headers with its first event). `signed-out`: the session is gone or the server
 * refused the stream. `needs-password`: the MQTT broker did not take the session cookie.
 * `denied`: connected, but the subscription was refused.
 */
export type TransportState =
  'idle' | 'connecting' | 'waiting' | 'live' | 'reconnecting' | 'signed-out' | 'needs-password' | 'denied' | 'stopped';

export type StateListener = (state: TransportState, detail: string) => void;

export interface Transport {
  /** Shown in the status bar. */
  readonly label: string;
  readonly state: TransportState;
  /** The state's reason or circumstances, in words ("as alice", "closed (1006); retrying in 1 s"). */
  readonly detail: string;
  /** Connections opened, the first included. */
  readonly connections: number;
  /** When the current connection was opened (Date.now()). */
  readonly connectedAt: number;
  start(): void;
  stop(): void;
  /** Drops the current connection and opens a new one at once (the panels' "Reconnect" buttons). */
  reconnectNow(): void;
  /** Called now with the current state, then on every change; returns the unsubscribe. */
  onState(listener: StateListener): () => void;
}

export interface TransportOptions<T> {
  label: string;
  onFrame(frame: Frame<T>, transport: Transport): void;
  /** Called when the server refused a connection and GET /login says the session is gone. */
  onSignedOut?(): void;
}

/** The state, its listeners and the reconnection every transport has; subclasses open and close connections. */
export abstract class BaseTransport<T> implements Transport {
  state: TransportState = 'idle';
  detail = '';
  connections = 0;
  connectedAt = 0;
  protected readonly reconnect = new Reconnect(() => this.connect());
  private readonly listeners = new Set<StateListener>();
  private readonly onOnline = () => {
    if (this.state === 'reconnecting') this.reconnectNow();
  };

  constructor(protected readonly options: TransportOptions<T>) {}

  get label(): string {
    return this.options.label;
  }

  onState(listener: StateListener): () => void {
    this.listeners.add(listener);
    listener(this.state, this.detail);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.state !== 'idle' && this.state !== 'stopped' && this.state !== 'signed-out') return;
    window.addEventListener('online', this.onOnline);
    this.connect();
  }

  stop(): void {
    this.reconnect.cancel();
    window.removeEventListener('online', this.onOnline);
    this.close();
    this.setState('stopped', '');
  }

  reconnectNow(): void {
    if (this.state === 'stopped' || this.state === 'idle') return;
    this.reconnect.reset();
    this.close();
    this.reopen();
  }

  protected get stopped(): boolean {
    return this.state === 'stopped';
  }

  protected setState(state: TransportState, detail: string): void {
    this.state = state;
    this.detail = detail;
    for (const listener of this.listeners) listener(state, detail);
  }

  /** Opens a connection (the first, or a retry when the back-off is over). */
  protected abstract connect(): void;

  /** Closes the current connection, if any, without reconnecting. */
  protected abstract close(): void;

  /** Reconnects by request; a transport may check something first. */
  protected reopen(): void {
    this.connect();
  }
}
