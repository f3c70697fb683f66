/**
 * A Harper subscription over WebSocket: `ws(s)://<host><path>`, the same frames as SSE, resumed
 * with `?startTime=` after a drop (harper-stream.ts). Harper refuses an unauthenticated or
 * unauthorised subscription by closing the socket with its own codes (shared/codes.ts).
 */
import { WS_CLOSE } from '../shared/codes.js';
import { HarperStream } from './harper-stream.js';

function wsOrigin(): string {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
}

export class WsTransport<T> extends HarperStream<T> {
  private socket: WebSocket | null = null;

  protected open(): void {
    const socket = new WebSocket(wsOrigin() + this.target());
    this.socket = socket;
    socket.onopen = () => this.opened();
    socket.onmessage = (event: MessageEvent<unknown>) => {
      if (typeof event.data === 'string') this.received(event.data);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      if (event.code === WS_CLOSE.FORBIDDEN) {
        this.refused('not allowed');
        return;
      }
      // Not authenticated may be a session that just ended: dropped() asks GET /login.
      void this.dropped(event.code === WS_CLOSE.UNAUTHORIZED ? 'not signed in' : `closed (${event.code})`);
    };
  }

  protected close(): void {
    const socket = this.socket;
    this.socket = null;
    if (socket && socket.readyState <= WebSocket.OPEN) socket.close();
  }
}
