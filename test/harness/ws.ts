/** WebSocket transport (the ws package, as a browser's WebSocket). */
import WebSocket from 'ws';
import type { AdminCredentials } from '../../launcher/harper-process.js';
import type { HarperEndpoints } from './harper.js';
import { Inbox, type Subscriber } from './inbox.js';
import { basicAuth } from './rest.js';
import type { EventFrame } from './sse.js';

export async function wsSubscriber(
  harper: HarperEndpoints,
  path: string,
  options: {
    name?: string;
    credentials?: AdminCredentials | null;
    /** permessage-deflate, on by default as in ws and browsers. */
    compress?: boolean;
  } = {},
): Promise<
  Subscriber & { socket: WebSocket; send(message: unknown): void; closed: Promise<{ code: number; reason: string }> }
> {
  const credentials = options.credentials === undefined ? harper.admin : options.credentials;
  const inbox = new Inbox();
  const socket = new WebSocket(harper.wsUrl + path, {
    headers: credentials ? { authorization: basicAuth(credentials) } : {},
    perMessageDeflate: options.compress ?? true,
  });
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as EventFrame;
    const isEvent = 'value' in frame && frame.type !== 'ack' && frame.type !== 'error';
    inbox.push({
      id: frame.id,
      type: frame.type ?? 'unknown',
      value: isEvent ? frame.value : frame,
      at: performance.now(),
      localTime: frame.localTime,
    });
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    name: options.name ?? `ws ${path}`,
    inbox,
    socket,
    closed,
    send: (message) => socket.send(typeof message === 'string' ? message : JSON.stringify(message)),
    close: async () => {
      if (socket.readyState === WebSocket.CLOSED) return;
      socket.close();
      await closed;
    },
  };
}
