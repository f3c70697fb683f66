/**
 * MQTT 3.1.1 has no way to tell a publisher that its message was refused (a QoS 1 publish is
 * answered with a plain PUBACK either way). Harper emits an `error` event for a publish that its
 * resource refused, for bad input or for lack of rights; log it with the client id so an operator
 * can find the misbehaving device. MQTT 5 clients additionally receive reason code 128
 * (unspecified error: Harper uses it for every refused publish) in their PUBACK.
 */
import { logger, server } from 'harperdb';
import { roleOf } from './access.js';
import { isRefusal } from './errors.js';
import type { User } from './harper-types.js';

interface MqttSession {
  sessionId?: string;
  user?: { username?: string };
}
interface MqttPacket {
  cmd?: string;
  topic?: string;
}
interface MqttEvents {
  on(event: 'error', listener: (error: unknown, socket: unknown, packet?: MqttPacket, session?: MqttSession) => void): void;
}
interface ConnectPacket {
  clientId?: string;
  protocolVersion?: number;
}
interface MqttServer {
  events?: MqttEvents;
  /** Called by Harper (synchronously) for every CONNECT once the user is known; a throw refuses it. */
  authorizeClient?: (packet: ConnectPacket, user: User | undefined) => void;
}

const mqtt = (server as unknown as { mqtt?: MqttServer }).mqtt;
const events = mqtt?.events;

/**
 * Harper keeps a durable MQTT session (its subscriptions and position) under the client id alone,
 * whoever connects: a client that reuses another's id with clean=false takes its session over, and
 * with clean=true deletes it. Devices are the clients we trust least, so a device user may only use
 * its own name as client id, or `<name>.<anything>` (device names cannot contain a dot, so one
 * device's ids never fall under another's name); an empty id (clean session, nothing to take over)
 * stays allowed. Others are refused with CONNACK 135 (MQTT 5) / 5 (3.1.1): not authorized.
 * Viewers, operators and the admin are not bound (the dashboard uses random ids).
 */
export function deviceMayUseClientId(username: string, clientId: string): boolean {
  return clientId === '' || clientId === username || clientId.startsWith(`${username}.`);
}

if (mqtt) {
  mqtt.authorizeClient = (packet, user) => {
    if (!user || roleOf(user) !== 'device') return;
    const clientId = packet.clientId ?? '';
    if (deviceMayUseClientId(user.username, clientId)) return;
    logger.warn?.(`MQTT CONNECT refused: device "${user.username}" may not use client id "${clientId}" (only "${user.username}" or "${user.username}.<suffix>")`);
    throw Object.assign(new Error(`client id "${clientId}" does not belong to device "${user.username}"`), { code: packet.protocolVersion === 5 ? 135 : 5 });
  };
}
events?.on('error', (error, _socket, packet, session) => {
  if (packet?.cmd !== 'publish') return;
  const status = (error as { statusCode?: number } | undefined)?.statusCode;
  if (!isRefusal(error) && status !== 401 && status !== 403) return; // anything else Harper logs itself
  const reason = isRefusal(error) ? error.toString() : `forbidden: ${(error as Error).message}`;
  logger.warn?.(`MQTT publish refused: client "${session?.sessionId ?? '?'}" user "${session?.user?.username ?? '?'}" topic "${packet.topic}": ${reason}`);
});
