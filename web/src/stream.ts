/**
 * A live subscription over SSE or WebSocket that survives drops without a gap or a duplicate.
 *
 * Harper's frames carry no SSE `id:` line, so the browser's own Last-Event-ID resume does nothing.
 * Instead this remembers the `localTime` of the last frame it saw and reconnects with
 * `?startTime=<that>`: the server replays what was missed, then continues live. A frame at or
 * before that time is one already seen and is dropped (a record subscription with nothing to
 * replay starts with the current state, the last event again). The browser's automatic
 * EventSource retry is never used (it would reconnect without startTime).
 */
import { HttpError, request } from './api.js';
import type { Frame } from './types.js';

/**
 * `waiting`: an SSE request that has not failed but has not had an event either. Harper sends an
 * SSE response's headers with its first event, so until then the browser cannot tell more.
 */
export type StreamState = 'idle' | 'connecting' | 'waiting' | 'live' | 'reconnecting' | 'signed-out' | 'stopped';

export interface StreamOptions<T> {
  /** Shown in the status bar. */
  label: string;
  transport: 'sse' | 'ws';
  /** Same-origin path, e.g. `/sensors/` or `/sensors/101`. */
  path: string;
  /** Extra query parameters for the first connection only (e.g. an initial startTime). */
  firstQuery?: Record<string, string>;
  onFrame(frame: Frame<T>, stream: LiveStream<T>): void;
  /** Called when the server refuses us and GET /login says the session is gone. */
  onSignedOut?(): void;
}

type StateListener = (state: StreamState, detail: string) => void;

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

/**
 * Whether the session cookie still works (a failed stream does not say why it failed). Checked
 * before every reconnection too: on an ended session Harper answers an SSE request with a Basic
 * challenge, which a browser would answer with its own password dialog.
 */
async function sessionAlive(): Promise<boolean> {
  try {
    await request('GET', '/login');
    return true;
  } catch (error) {
    // A network failure is not the session's: keep retrying.
    return !(error instanceof HttpError && (error.status === 401 || error.status === 403));
  }
}

function wsOrigin(): string {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
}

export class LiveStream<T> {
  state: StreamState = 'idle';
  detail = '';
  /** localTime of the newest frame seen: where a reconnect resumes. */
  lastLocalTime: number | undefined;
  /** Connections made, the first included. */
  connections = 0;
  /** Frames received since start. */
  frames = 0;
  /** When the current connection was opened (Date.now()). */
  connectedAt = 0;
  /** Frames a resumed connection sent again (at or before its startTime) and this dropped. */
  repeatsDropped = 0;
  /** The startTime of the current connection, when it resumes. */
  private resumedFrom: number | undefined;

  private source: EventSource | null = null;
  private socket: WebSocket | null = null;
  private retry = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private listeners = new Set<StateListener>();
  private readonly onOnline = () => {
    if (this.state === 'reconnecting') void this.reconnectNow();
  };

  constructor(readonly options: StreamOptions<T>) {}

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
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    this.close();
    this.setState('stopped', '');
  }

  /** The URL of the next connection: resume after the last frame, or the first query. */
  url(): string {
    const query = new URLSearchParams();
    if (this.lastLocalTime !== undefined) query.set('startTime', String(this.lastLocalTime));
    else for (const [name, value] of Object.entries(this.options.firstQuery ?? {})) query.set(name, value);
    const search = query.toString();
    const path = this.options.path + (search ? `?${search}` : '');
    return this.options.transport === 'ws' ? wsOrigin() + path : path;
  }

  private setState(state: StreamState, detail: string): void {
    this.state = state;
    this.detail = detail;
    for (const listener of this.listeners) listener(state, detail);
  }

  private connect(): void {
    this.close();
    this.connections++;
    this.connectedAt = Date.now();
    this.resumedFrom = this.lastLocalTime;
    this.setState(this.connections === 1 ? 'connecting' : 'reconnecting', this.connections === 1 ? 'waiting for the first event' : `attempt ${this.retry + 1}`);
    if (this.options.transport === 'sse') this.connectSse();
    else this.connectWs();
  }

  private connectSse(): void {
    const source = new EventSource(this.url());
    this.source = source;
    // An SSE stream opens with its first event (possibly the first write to a new record).
    source.onopen = () => this.opened();
    setTimeout(() => {
      if (this.source === source && (this.state === 'connecting' || this.state === 'reconnecting')) this.setState('waiting', 'no event yet (an SSE stream opens with its first event)');
    }, 2000);
    source.onmessage = (event: MessageEvent<string>) => this.received(event.data);
    source.onerror = () => {
      if (this.source !== source) return;
      // Never let EventSource retry by itself: it would not resume from startTime.
      source.close();
      this.dropped('the stream was interrupted');
    };
  }

  private connectWs(): void {
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.onopen = () => this.opened();
    socket.onmessage = (event: MessageEvent<string>) => {
      if (typeof event.data === 'string') this.received(event.data);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      // 3000: not authenticated, 3003: not allowed (Harper's WebSocket denials).
      if (event.code === 3003) {
        this.close();
        this.setState('signed-out', 'not allowed');
        return;
      }
      this.dropped(event.code === 3000 ? 'not signed in' : `closed (${event.code})`);
    };
  }

  private opened(): void {
    this.retry = 0;
    this.setState('live', '');
  }

  private received(data: string): void {
    let frame: Frame<T>;
    try {
      frame = JSON.parse(data) as Frame<T>;
    } catch {
      return;
    }
    if (frame === null || typeof frame !== 'object') return;
    // The server ends a subscription with a last error event when the subscriber fell too far
    // behind (slow_consumer) or the server is stopping (server_shutting_down); Harper may leave
    // an SSE response open after it, so reconnect now, resuming from the last event seen.
    const ended = (frame as { value?: { error?: unknown } }).value?.error;
    if (frame.type === 'error' && (ended === 'slow_consumer' || ended === 'server_shutting_down')) {
      this.close();
      void this.dropped(ended === 'slow_consumer' ? 'fell behind; resuming' : 'the server is restarting');
      return;
    }
    // WebSocket replies to writes (ack/error) are not events.
    if (frame.type === 'ack' || frame.type === 'error') return;
    if (this.state !== 'live') this.opened();
    // A resumed record subscription with nothing new to replay starts with the record's current
    // state, i.e. the last event already seen (observed with Harper 4.7): not a new event.
    if (this.resumedFrom !== undefined && typeof frame.localTime === 'number' && frame.localTime <= this.resumedFrom) {
      this.repeatsDropped++;
      return;
    }
    if (typeof frame.localTime === 'number' && (this.lastLocalTime === undefined || frame.localTime > this.lastLocalTime)) {
      this.lastLocalTime = frame.localTime;
    }
    this.frames++;
    this.options.onFrame(frame, this);
  }

  private stopped(): boolean {
    return this.state === 'stopped';
  }

  private async dropped(reason: string): Promise<void> {
    this.close();
    if (this.stopped()) return;
    if (!(await sessionAlive())) {
      if (this.stopped()) return;
      this.setState('signed-out', 'session ended');
      this.options.onSignedOut?.();
      return;
    }
    if (this.stopped()) return;
    const delay = BACKOFF_MS[Math.min(this.retry, BACKOFF_MS.length - 1)] ?? 15000;
    this.retry++;
    this.setState('reconnecting', `${reason}; retrying in ${Math.round(delay / 100) / 10} s`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Drops the current connection and resumes at once (used by the "reconnect" buttons). */
  async reconnectNow(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'idle') return;
    clearTimeout(this.timer);
    this.close();
    this.retry = 0;
    if (!(await sessionAlive())) {
      if (this.stopped()) return;
      this.setState('signed-out', 'session ended');
      this.options.onSignedOut?.();
      return;
    }
    if (!this.stopped()) this.connect();
  }

  /** Closes the connection without resuming (a test or a user can then call reconnectNow). */
  private close(): void {
    const source = this.source;
    const socket = this.socket;
    this.source = null;
    this.socket = null;
    source?.close();
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close();
  }
}
