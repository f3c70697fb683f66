/**
 * Where the protocols' figures for /metrics are counted (lib/metrics/counters.ts), at Harper's doors, so
 * that the resource classes stay as they are:
 * - MQTT: connections from Harper's `connected`/`disconnected` events; every publish (to any
 *   table, over TCP, TLS or WebSocket) through the session's `publish`, accepted or refused with
 *   its code. Deliveries are counted where lib/mqtt/deliveries.ts sees each outgoing PUBLISH.
 * - REST: the outcome of every PUT, PATCH, POST and DELETE on a data path, from the response's
 *   status (2xx accepted; otherwise the refusal's code). Reads pass through untouched.
 * - WebSocket (not MQTT over WebSocket): open connections, and frames sent to the client as its
 *   deliveries (events, and the ack/error replies to its writes). Its writes are counted in
 *   lib/streams/websocket-writes.ts, SSE deliveries in lib/streams/sse-resume.ts, subscribers in
 *   lib/streams/slow-consumers.ts.
 * What this adds per message: one counter increment, and on MQTT publishes and REST writes one
 * reaction to the promise Harper already waits for.
 */
import { isThenable } from '../harper/types.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { server } from 'harperdb';
import { isRefusal } from '../rules/errors.js';
import {
  addConnections,
  countDelivery,
  countWriteAccepted,
  countWriteRefused,
  type WriteProtocol,
} from './counters.js';

/** The refusal code of an error thrown at a write: ours, or Harper's by its status. */
export function refusalCode(error: unknown): string {
  if (isRefusal(error)) return error.error;
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return status === 401 ? 'unauthorized' : status === 403 ? 'forbidden' : 'other';
}

const accepted = (protocol: WriteProtocol) => () => countWriteAccepted(protocol);
const refused = (protocol: WriteProtocol) => (error: unknown) => countWriteRefused(protocol, refusalCode(error));

/* ---- MQTT ---- */

interface MqttSession {
  publish?: (...args: unknown[]) => unknown;
}
interface MqttEvents {
  on(event: 'connected' | 'disconnected', listener: (session: MqttSession | undefined) => void): void;
}

const mqttAccepted = accepted('mqtt');
const mqttRefused = refused('mqtt');
const mqttSessions = new WeakSet<object>();

function countPublishes(session: MqttSession): void {
  const publish = session.publish;
  if (typeof publish !== 'function') return;
  session.publish = function (this: unknown, ...args: unknown[]) {
    let result: unknown;
    try {
      result = publish.apply(this, args);
    } catch (error) {
      mqttRefused(error);
      throw error;
    }
    if (isThenable(result)) result.then(mqttAccepted, mqttRefused);
    else mqttAccepted();
    return result;
  };
}

const mqttEvents = (server as unknown as { mqtt?: { events?: MqttEvents } }).mqtt?.events;
mqttEvents?.on('connected', (session) => {
  if (!session || mqttSessions.has(session)) return;
  mqttSessions.add(session);
  addConnections('mqtt', 1);
  countPublishes(session);
});
// Harper emits `disconnected` also for connections that never completed their CONNECT.
mqttEvents?.on('disconnected', (session) => {
  if (session && mqttSessions.delete(session)) addConnections('mqtt', -1);
});

/* ---- REST ---- */

interface HarperRequest {
  method: string;
  pathname: string;
}
interface HarperResponse {
  status?: number;
  body?: unknown;
  data?: unknown;
}
type Next = (request: HarperRequest) => unknown;

/** Paths that are actions of the server, not data writes. */
const NOT_DATA = /^\/(login|logout|server-notice|metrics)(\/|$|\?)/;
const WRITE_METHODS = new Set(['PUT', 'PATCH', 'POST', 'DELETE']);

/** The code in a refusal body Harper serialised (`{"error":"invalid_field",...}`). */
function codeOfBody(response: HarperResponse): string | undefined {
  const body = response.data ?? response.body;
  if (isRefusal(body)) return body.error;
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8', 0, 200) : undefined;
  return text ? /"error"\s*:\s*"([a-z_]+)"/.exec(text)?.[1] : undefined;
}

function countRest(response: unknown): unknown {
  const status = (response as HarperResponse | undefined)?.status ?? 200;
  if (status < 400) countWriteAccepted('rest');
  else
    countWriteRefused(
      'rest',
      status === 401
        ? 'unauthorized'
        : (codeOfBody(response as HarperResponse) ?? (status === 403 ? 'forbidden' : 'other')),
    );
  return response;
}

// runFirst: Harper's REST handler answers without passing the request on, so a listener that
// runs after it never sees the response. Requests lib/access/http-guard.ts refuses count as refused.
const http = (
  server as unknown as {
    http?: (listener: (request: HarperRequest, next: Next) => unknown, options?: { runFirst?: boolean }) => unknown;
  }
).http;
http?.(
  (request, next) => {
    if (!WRITE_METHODS.has(request.method) || NOT_DATA.test(request.pathname)) return next(request);
    const response = next(request);
    return isThenable(response) ? response.then(countRest) : countRest(response);
  },
  { runFirst: true },
);

/* ---- WebSocket ---- */

type UpgradeNext = (request: IncomingMessage, socket: Duplex, head: Buffer) => unknown;
const upgrade = (
  server as unknown as {
    upgrade?: (
      listener: (request: IncomingMessage, socket: Duplex, head: Buffer, next: UpgradeNext) => unknown,
      options?: { runFirst?: boolean },
    ) => unknown;
  }
).upgrade;

interface WebSocketLike {
  send(...args: unknown[]): unknown;
  once(event: 'close', listener: () => void): unknown;
}

/** The `ws` library's WebSocket attached to an upgraded socket (as lib/mqtt/wire-limits.ts finds it). */
function webSocketOf(socket: Duplex): WebSocketLike | undefined {
  const key = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'websocket');
  const ws = key ? (socket as unknown as Record<symbol, unknown>)[key] : undefined;
  return typeof (ws as Partial<WebSocketLike> | undefined)?.send === 'function' ? (ws as WebSocketLike) : undefined;
}

upgrade?.(
  (request, socket, head, next) => {
    const result = next(request, socket, head);
    // MQTT over WebSocket is counted as MQTT.
    if (String(request.headers['sec-websocket-protocol'] ?? '').includes('mqtt')) return result;
    const ws = webSocketOf(socket);
    if (!ws) return result;
    addConnections('websocket', 1);
    ws.once('close', () => addConnections('websocket', -1));
    const send = ws.send;
    ws.send = function (this: unknown, ...args: unknown[]) {
      countDelivery('websocket');
      return send.apply(this, args);
    };
    return result;
  },
  { runFirst: true },
);
