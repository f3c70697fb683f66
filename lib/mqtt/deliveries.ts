/**
 * What MQTT subscribers receive is corrected as it leaves the server, where Harper 4.7 differs
 * from the specification: topic names as published, and the RETAIN flag on retained messages sent
 * because of a new subscription.
 *
 * Topic names.
 * MQTT 3.1.1 §3.3.2.1 and MQTT 5.0 §3.3.2.1: the Topic Name in a PUBLISH sent to a subscriber is
 * the topic the message was published to (clients match it against their own filters to route
 * it). Harper 4.7 builds the topic of a delivery as resource path + "/" + record id, and the
 * catch-all's path is empty, so a publish to `factory/line-1/status` reached `factory/#`
 * subscribers as `/factory/line-1/status`. No topic we accept starts with "/" (lib/rules/topics.ts
 * refuses an empty first level, as do sensor and sign ids), so a leading "/" in a PUBLISH the
 * server sends is always that artefact: it is removed as the packet leaves, on MQTT over TCP, TLS
 * and WebSocket alike. Harper hands each packet it sends to the connection in one write, which
 * is where this adapter sits.
 *
 * RETAIN. MQTT 3.1.1 §3.3.1.3 (MQTT-3.3.1-8) and MQTT 5.0 §3.3.1.3: a message sent to a client
 * because it subscribed, from the retained messages, has RETAIN=1; a message forwarded because it
 * was published while the client was subscribed has RETAIN=0. Harper sends both with 0, so a
 * device could not tell the last known state from a live change. A new MQTT subscription notes
 * the records it sends as current state (lib/access/guarded-table.ts, through `noteRetained`) and the
 * adapter sets the flag on the next PUBLISH of that topic on that connection.
 */
import { Socket } from 'node:net';
import { server } from 'harperdb';
import { countDelivery } from '../metrics/counters.js';
import { publishTopic, publishedTopicName, withRetainFlag } from './publish-packet.js';
import { acknowledgementCoalescer } from './acknowledgements.js';

/** Per connection (its socket), the ids of records sent as current state whose PUBLISH is due. */
const retainedDue = new WeakMap<object, string[]>();

/** Notes that the next PUBLISH of record `id` on this MQTT connection is a retained message. */
export function noteRetained(socket: object, id: string): void {
  const due = retainedDue.get(socket);
  if (due) due.push(id);
  else retainedDue.set(socket, [id]);
}

/** Harper's topic is resource path + "/" + id: the id ends it (the catch-all's path is empty). */
function retainFlagDue(socket: object, topic: string): boolean {
  const due = retainedDue.get(socket);
  if (!due || due.length === 0) return false;
  const index = due.findIndex((id) => topic === id || topic.endsWith(`/${id}`));
  if (index < 0) return false;
  due.splice(index, 1);
  return true;
}

/** MQTT control packet type 3 in the first byte's high nibble: PUBLISH. */
const PUBLISH = 0x30;

function corrected(socket: object, packet: Buffer): Buffer {
  if ((packet[0] & 0xf0) === PUBLISH) countDelivery('mqtt'); // for /metrics (lib/metrics/counters.ts)
  const fixed = publishedTopicName(packet);
  if (!retainedDue.get(socket)?.length) return fixed;
  const topic = publishTopic(fixed);
  return topic !== undefined && retainFlagDue(socket, topic) ? withRetainFlag(fixed) : fixed;
}

interface WebSocketLike {
  send(data: unknown, ...rest: unknown[]): unknown;
}

/** Every packet the server sends passes here once: one wrapper per connection. */
function rewriteOutgoing(connection: unknown): void {
  if (connection instanceof Socket) {
    const coalesce = acknowledgementCoalescer(connection);
    const write = connection.write;
    connection.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      if (!Buffer.isBuffer(chunk)) return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
      coalesce(chunk);
      return (write as (...args: unknown[]) => boolean).call(this, corrected(connection, chunk), ...rest);
    } as Socket['write'];
    return;
  }
  const ws = connection as Partial<WebSocketLike> | null;
  if (typeof ws?.send === 'function') {
    const send = ws.send;
    ws.send = function (this: WebSocketLike, data: unknown, ...rest: unknown[]) {
      return send.call(this, Buffer.isBuffer(data) ? corrected(ws, data) : data, ...rest);
    };
  }
}

interface MqttEvents {
  on(event: 'connection', listener: (connection: unknown) => void): void;
}

// Harper emits `connection` (TCP/TLS socket, or the WebSocket of MQTT over WebSocket) before it
// sends the connection anything.
(server as unknown as { mqtt?: { events?: MqttEvents } }).mqtt?.events?.on('connection', rewriteOutgoing);
