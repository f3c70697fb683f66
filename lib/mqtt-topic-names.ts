/**
 * MQTT subscribers receive topics as they were published.
 *
 * MQTT 3.1.1 §3.3.2.1 and MQTT 5.0 §3.3.2.1: the Topic Name in a PUBLISH sent to a subscriber is
 * the topic the message was published to (clients match it against their own filters to route
 * it). Harper 4.7 builds the topic of a delivery as resource path + "/" + record id, and the
 * catch-all's path is empty, so a publish to `factory/line-1/status` reached `factory/#`
 * subscribers as `/factory/line-1/status`. No topic we accept starts with "/" (lib/topic-rules.ts
 * refuses an empty first level, as do sensor and sign ids), so a leading "/" in a PUBLISH the
 * server sends is always that artefact: it is removed as the packet leaves, on MQTT over TCP, TLS
 * and WebSocket alike. Harper hands each packet it sends to the connection in one write, which
 * is where this adapter sits.
 */
import { Socket } from 'node:net';
import { server } from 'harperdb';
import { publishedTopicName } from './publish-packet.js';

interface WebSocketLike {
  send(data: unknown, ...rest: unknown[]): unknown;
}

function rewriteOutgoing(connection: unknown): void {
  if (connection instanceof Socket) {
    const write = connection.write;
    connection.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      return (write as (...args: unknown[]) => boolean).call(this, Buffer.isBuffer(chunk) ? publishedTopicName(chunk) : chunk, ...rest);
    } as Socket['write'];
    return;
  }
  const ws = connection as Partial<WebSocketLike> | null;
  if (typeof ws?.send === 'function') {
    const send = ws.send;
    ws.send = function (this: WebSocketLike, data: unknown, ...rest: unknown[]) {
      return send.call(this, Buffer.isBuffer(data) ? publishedTopicName(data) : data, ...rest);
    };
  }
}

interface MqttEvents {
  on(event: 'connection', listener: (connection: unknown) => void): void;
}

// Harper emits `connection` (TCP/TLS socket, or the WebSocket of MQTT over WebSocket) before it
// sends the connection anything.
(server as unknown as { mqtt?: { events?: MqttEvents } }).mqtt?.events?.on('connection', rewriteOutgoing);
