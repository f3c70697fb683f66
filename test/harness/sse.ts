/** Server-Sent Events transport (the eventsource package, as a browser's EventSource). */
import { EventSource } from 'eventsource';
import type { AdminCredentials } from '../../launcher/harper-process.js';
import type { HarperEndpoints } from './harper.js';
import { Inbox, type Subscriber } from './inbox.js';
import { basicAuth } from './rest.js';

/** Harper's SSE and WebSocket frames: one JSON object per event. */
export interface EventFrame {
  id?: string;
  type?: string;
  value?: unknown;
  localTime?: number;
  version?: number;
}

export function sseSubscriber(
  harper: HarperEndpoints,
  path: string,
  options: { name?: string; credentials?: AdminCredentials | null } = {},
): Subscriber & { source: EventSource; opened: Promise<void>; failed: Promise<{ status?: number; message?: string }> } {
  const credentials = options.credentials === undefined ? harper.admin : options.credentials;
  const inbox = new Inbox();
  const source = new EventSource(harper.httpUrl + path, {
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: { ...(init?.headers ?? {}), ...(credentials ? { authorization: basicAuth(credentials) } : {}) },
      }),
  });
  source.onmessage = (event) => {
    const frame = JSON.parse(event.data) as EventFrame;
    inbox.push({
      id: frame.id,
      type: frame.type ?? 'unknown',
      value: frame.value,
      at: performance.now(),
      localTime: frame.localTime,
    });
  };
  const opened = new Promise<void>((resolve) => source.addEventListener('open', () => resolve()));
  const failed = new Promise<{ status?: number; message?: string }>((resolve) =>
    source.addEventListener('error', (event) =>
      resolve({ status: (event as { code?: number }).code, message: (event as { message?: string }).message }),
    ),
  );
  return {
    name: options.name ?? `sse ${path}`,
    inbox,
    source,
    opened,
    failed,
    close: async () => source.close(),
  };
}
