/**
 * A Harper subscription over Server-Sent Events: EventSource on a resource path, resumed with
 * `?startTime=` after a drop (harper-stream.ts). EventSource's own retry is cut short at its first
 * error: it would reconnect without startTime.
 */
import { HarperStream } from './harper-stream.js';

/** How long a request without an event shows as connecting before it shows as waiting. */
const WAITING_AFTER_MS = 2000;

export class SseTransport<T> extends HarperStream<T> {
  private source: EventSource | null = null;

  protected open(): void {
    const source = new EventSource(this.target());
    this.source = source;
    // An SSE stream opens with its first event (possibly the first write to a new record).
    source.onopen = () => this.opened();
    setTimeout(() => {
      if (this.source === source && (this.state === 'connecting' || this.state === 'reconnecting'))
        this.setState('waiting', 'no event yet (an SSE stream opens with its first event)');
    }, WAITING_AFTER_MS);
    source.onmessage = (event: MessageEvent<string>) => this.received(event.data);
    source.onerror = () => {
      if (this.source !== source) return;
      source.close();
      void this.dropped('the stream was interrupted');
    };
  }

  protected close(): void {
    const source = this.source;
    this.source = null;
    source?.close();
  }
}
