/**
 * What SSE (sse.ts) and WebSocket (ws.ts) share: both subscribe to a Harper resource path and
 * receive the same JSON frames, resume with `?startTime=` (resume.ts), and ask GET /login whether
 * the session still stands when a connection fails, since neither says why it failed. The
 * browser's automatic EventSource retry is never used (it would reconnect without startTime).
 */
import { HttpError, request } from '../api.js';
import { seconds } from './reconnect.js';
import { ResumePoint } from './resume.js';
import { BaseTransport, type TransportOptions } from './transport.js';

export interface HarperStreamOptions<T> extends TransportOptions<T> {
  /** Same-origin path, e.g. `/sensors/` or `/sensors/101`. */
  path: string;
  /** Extra query parameters for the first connection only (e.g. an initial startTime). */
  firstQuery?: Record<string, string>;
}

/**
 * Whether the session cookie still works. Checked before every reconnection too: on an ended
 * session Harper answers an SSE request with a Basic challenge, which a browser would answer with
 * its own password dialog.
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

export abstract class HarperStream<T> extends BaseTransport<T> {
  readonly resume = new ResumePoint();
  /** Events delivered since start. */
  frames = 0;

  constructor(protected override readonly options: HarperStreamOptions<T>) {
    super(options);
  }

  /** Path and query of the next connection. */
  protected target(): string {
    return this.options.path + this.resume.query(this.options.firstQuery);
  }

  protected connect(): void {
    this.close();
    this.connections++;
    this.connectedAt = Date.now();
    this.resume.opened();
    const first = this.connections === 1;
    this.setState(
      first ? 'connecting' : 'reconnecting',
      first ? 'waiting for the first event' : `attempt ${this.reconnect.attempts + 1}`,
    );
    this.open();
  }

  /** Opens the protocol's connection to `target()`. */
  protected abstract open(): void;

  protected opened(): void {
    this.reconnect.succeeded();
    this.setState('live', '');
  }

  protected received(data: string): void {
    const reading = this.resume.read<T>(data);
    if (reading.kind === 'other') return;
    if (reading.kind === 'ended') {
      // Resume now from the last event seen.
      this.close();
      void this.dropped(reading.reason === 'slow_consumer' ? 'fell behind; resuming' : 'the server is restarting');
      return;
    }
    if (this.state !== 'live') this.opened();
    if (reading.kind === 'repeat') return;
    this.frames++;
    this.options.onFrame(reading.frame, this);
  }

  /** The connection failed or ended: retry after the back-off, unless the session is gone. */
  protected async dropped(reason: string): Promise<void> {
    this.close();
    if (this.stopped) return;
    if (!(await this.sessionStands())) return;
    if (this.stopped) return;
    const delay = this.reconnect.failed();
    this.setState('reconnecting', `${reason}; retrying in ${seconds(delay)} s`);
  }

  /** Refused for good (the server's 403): no retry until asked. */
  protected refused(detail: string): void {
    this.close();
    this.reconnect.refused();
    this.setState('signed-out', detail);
  }

  protected override reopen(): void {
    void this.sessionStands().then((stands) => {
      if (stands && !this.stopped) this.connect();
    });
  }

  /** False, with the state signed out and the page told, when the session has ended. */
  private async sessionStands(): Promise<boolean> {
    if (await sessionAlive()) return true;
    if (this.stopped) return false;
    this.reconnect.refused();
    this.setState('signed-out', 'session ended');
    this.options.onSignedOut?.();
    return false;
  }
}
