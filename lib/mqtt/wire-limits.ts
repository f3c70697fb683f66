/**
 * Oversize MQTT packets and WebSocket messages are refused while their first bytes arrive, before
 * Harper buffers or parses them.
 *
 * Harper 4.7 has no setting for either: its MQTT parser (mqtt-packet) keeps reading a packet of
 * any announced length into memory, and the WebSocket server of the HTTP port takes messages of up
 * to 100 MB (`maxPayload` comes from the first listener on the port, Harper's own MQTT-over-
 * WebSocket one, and `mqtt.webSocket` must be a boolean in its config). One 24 MB publish from a
 * device grew the server by 1.4 GB. Both limits are therefore applied here, at MAX_WIRE_BYTES (a
 * small multiple of the record limit, lib/rules/limits.ts); lib/rules/limits.ts refuses what is between.
 *
 * - MQTT over TCP/TLS: every MQTT packet starts with a fixed header that announces its length.
 *   A guard in front of Harper's parser reads those headers (a few bytes per packet; bodies are
 *   skipped without being looked at) and closes the connection at the first packet announcing
 *   more than MAX_WIRE_BYTES: MQTT 5 clients first receive DISCONNECT 0x95 "Packet too large",
 *   MQTT 3.1.1 has no such code, so its connection is just closed. The refusal is logged with the
 *   client address.
 * - WebSocket (REST/SSE resources and MQTT over WebSocket share the HTTP port's server): the
 *   message limit of each new connection is lowered to MAX_WIRE_BYTES; a larger message closes
 *   the socket with 1009 "Message too big" (`WS_CLOSE.MESSAGE_TOO_BIG`) as it starts to arrive.
 */
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { logger, server } from 'harperdb';
import { MQTT5_REASON } from '../../shared/codes.js';
import { MAX_WIRE_BYTES } from '../rules/limits.js';

/** DISCONNECT (0xe0), 2 bytes follow: the reason code, then a property length of 0. */
const DISCONNECT_PACKET_TOO_LARGE = Buffer.from([0xe0, 0x02, MQTT5_REASON.PACKET_TOO_LARGE, 0x00]);
const DISCONNECT_GRACE_MS = 1_000;

type DataListener = (chunk: Buffer) => void;

/**
 * Follows the MQTT packet boundaries of one connection. `accept(chunk)` is false once a packet
 * announced more than MAX_WIRE_BYTES; from then on nothing more is passed on.
 */
class PacketSizeGuard {
  /** Body bytes of the current packet still to skip. */
  private skip = 0;
  /** Position in the fixed header: 0 = type byte next, 1..4 = length bytes read so far + 1. */
  private headerAt = 0;
  private length = 0;
  private multiplier = 1;
  private packetType = 0;
  /** The first packet (CONNECT): its first body bytes, to learn the protocol level. */
  private connectBytes: number[] | undefined = [];
  protocolLevel = 0;
  refused = false;
  announced = 0;
  /** Packets completed so far on this connection (the first is the CONNECT). */
  packets = 0;
  /** In the chunk last accepted: where the first packet (the CONNECT) ended, if it ended there. */
  connectEnd: number | undefined;

  accept(chunk: Buffer): boolean {
    if (this.refused) return false;
    this.connectEnd = undefined;
    let at = 0;
    while (at < chunk.length) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, chunk.length - at);
        if (this.connectBytes) this.readConnect(chunk, at, take);
        at += take;
        this.skip -= take;
        if (this.skip === 0) this.completed(at);
        continue;
      }
      const byte = chunk[at++];
      if (this.headerAt === 0) {
        this.packetType = byte >> 4;
        this.headerAt = 1;
        this.length = 0;
        this.multiplier = 1;
        continue;
      }
      this.length += (byte & 0x7f) * this.multiplier;
      this.multiplier *= 128;
      this.headerAt++;
      if (byte & 0x80) {
        if (this.headerAt > 4) return true; // malformed length: Harper's parser refuses it
        continue;
      }
      this.headerAt = 0;
      if (this.length > MAX_WIRE_BYTES) {
        this.refused = true;
        this.announced = this.length;
        return false;
      }
      this.skip = this.length;
      if (this.connectBytes && this.packetType !== 1) this.connectBytes = undefined;
      if (this.skip === 0) this.completed(at);
    }
    return true;
  }

  private completed(at: number): void {
    if (this.packets++ === 0) this.connectEnd = at;
  }

  /** CONNECT's variable header: protocol name (2 + 4 bytes for "MQTT"), then the level byte. */
  private readConnect(chunk: Buffer, at: number, take: number): void {
    const bytes = this.connectBytes!;
    for (let i = at; i < at + take && bytes.length < 7; i++) bytes.push(chunk[i]);
    if (bytes.length === 7) {
      this.protocolLevel = bytes[6];
      this.connectBytes = undefined;
    } else if (take === this.skip) {
      this.connectBytes = undefined; // a CONNECT shorter than that: not ours to judge
    }
  }
}

/**
 * Puts the guard in front of the listener Harper attaches for its parser. Harper attaches it with
 * `socket.on('data', ...)` after emitting `connection` (after an await when mTLS is on), so the
 * socket's `on` is wrapped until that happens: no data can reach the parser unguarded, and no
 * data is read before Harper is ready for it.
 */
function guardMqttSocket(socket: Socket): void {
  const guard = new PacketSizeGuard();
  // MQTT 3.1.1 §3.1.4 / MQTT 5 §3.1.4: a client may send further packets right after CONNECT,
  // without waiting for CONNACK (Paho does: CONNECT and SUBSCRIBE back to back). Harper closes a
  // connection whose next packet arrives while it is still authenticating the CONNECT, so what
  // follows the CONNECT is held here until Harper has answered it, then handed over in order.
  let held: Buffer[] | undefined;
  let answered = false;
  let parse: DataListener | undefined;
  const write = socket.write;
  socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (!answered && held && Buffer.isBuffer(chunk) && chunk[0] >> 4 === 2) {
      // The CONNACK: Harper's session exists. What waited is handed over once Harper has
      // finished with the CONNECT (after this turn), still ahead of anything arriving later.
      setImmediate(() => {
        const waiting = held ?? [];
        held = undefined;
        answered = true;
        for (const bytes of waiting) parse?.(bytes);
      });
    }
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Socket['write'];
  type On = (this: Socket, event: string | symbol, listener: (...args: never[]) => void) => Socket;
  const originalOn = socket.on as On;
  const wrappedOn: On = function (this: Socket, event, listener) {
    if (event !== 'data') return originalOn.call(this, event, listener);
    if (socket.on === wrappedOn) delete (socket as { on?: unknown }).on; // back to the prototype's
    parse = listener as DataListener;
    return originalOn.call(this, 'data', (chunk: Buffer) => {
      if (guard.accept(chunk)) {
        if (answered) return parse!(chunk);
        if (held) return void held.push(chunk);
        const end = guard.connectEnd;
        if (end === undefined) return parse!(chunk); // the CONNECT is still arriving
        held = end < chunk.length ? [chunk.subarray(end)] : [];
        return parse!(end < chunk.length ? chunk.subarray(0, end) : chunk);
      }
      if (guard.announced === 0) return; // already refused: what is still in flight is dropped
      logger.warn?.(
        `MQTT packet of ${guard.announced} bytes refused from ${socket.remoteAddress} (limit ${MAX_WIRE_BYTES}); connection closed`,
      );
      guard.announced = 0;
      socket.pause(); // nothing more is read: the rest of the packet stays in the kernel's buffers
      if (guard.protocolLevel !== 5) {
        socket.destroy();
        return;
      }
      // Closing a socket with unread data resets the connection, and a reset arriving before the
      // client has read the DISCONNECT can discard it: send it, and close a moment later.
      socket.end(DISCONNECT_PACKET_TOO_LARGE);
      setTimeout(() => socket.destroy(), DISCONNECT_GRACE_MS).unref();
    });
  };
  socket.on = wrappedOn as Socket['on'];
}

interface MqttEvents {
  on(event: 'connection', listener: (socket: unknown) => void): void;
}

const mqttEvents = (server as unknown as { mqtt?: { events?: MqttEvents } }).mqtt?.events;
// MQTT over WebSocket also emits `connection`, with the WebSocket: that one is limited below.
mqttEvents?.on('connection', (socket) => {
  if (socket instanceof Socket) guardMqttSocket(socket);
});

/**
 * WebSocket: Harper's `server.upgrade` (4.7: listeners per HTTP port, `runFirst` puts ours first)
 * lets us act right after Harper's WebSocket server has taken the connection over, synchronously,
 * before any frame is read. The `ws` library keeps the message limit on the connection's receiver;
 * lowering it there applies MAX_WIRE_BYTES to this connection alone (the replication port's
 * server, which needs large messages, has its own listeners and is untouched).
 */
type UpgradeListener = (
  request: IncomingMessage,
  socket: Socket,
  head: Buffer,
  next: (request: IncomingMessage, socket: Socket, head: Buffer) => unknown,
) => unknown;
const upgrade = (
  server as unknown as { upgrade?: (listener: UpgradeListener, options?: { runFirst?: boolean }) => void }
).upgrade;

interface WebSocketInternals {
  _receiver?: { _maxPayload?: number };
}

function limitWebSocket(socket: Socket): void {
  const key = Object.getOwnPropertySymbols(socket).find((symbol) => symbol.description === 'websocket');
  const receiver = key
    ? (socket as unknown as Record<symbol, WebSocketInternals | undefined>)[key]?._receiver
    : undefined;
  if (receiver && (receiver._maxPayload === 0 || (receiver._maxPayload ?? 0) > MAX_WIRE_BYTES))
    receiver._maxPayload = MAX_WIRE_BYTES;
}

if (upgrade) {
  upgrade(
    (request, socket, head, next) => {
      const result = next(request, socket, head);
      limitWebSocket(socket);
      return result;
    },
    { runFirst: true },
  );
} else {
  logger.warn?.('this Harper has no server.upgrade: WebSocket messages are limited only by Harper (100 MB)');
}
