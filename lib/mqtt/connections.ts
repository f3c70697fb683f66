/**
 * MQTT 3.1.1 has no way to tell a publisher that its message was refused (a QoS 1 publish is
 * answered with a plain PUBACK either way). Harper emits an `error` event for a publish that its
 * resource refused, for bad input or for lack of rights; log it with the client id so an operator
 * can find the misbehaving device. MQTT 5 clients additionally receive reason code 128
 * (unspecified error: Harper uses it for every refused publish) in their PUBACK.
 *
 * Also the one place where MQTT CONNECTs are checked beyond their credentials: client ids are
 * bound to device names, and MQTT 3.1.1's rule for empty client ids is kept (below).
 */
import { logger, server, tables } from 'harperdb';
import { MQTT3_CONNACK, MQTT5_REASON } from '../../shared/codes.js';
import { roleOf } from '../access/policy.js';
import { isRefusal } from '../rules/errors.js';
import type { User } from '../harper/types.js';

interface MqttSession {
  sessionId?: string;
  user?: { username?: string };
}
interface MqttPacket {
  cmd?: string;
  topic?: string;
}
interface MqttEvents {
  on(
    event: 'error',
    listener: (error: unknown, socket: unknown, packet?: MqttPacket, session?: MqttSession) => void,
  ): void;
}
interface ConnectPacket {
  clientId?: string;
  clean?: boolean;
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
 * with clean=true deletes it. So client ids are bound to device names:
 * - a device user may only use its own name as client id, or `<name>.<anything>` (device names
 *   cannot contain a dot, so one device's ids never fall under another's name); an empty id (a
 *   clean session: nothing to take over) stays allowed;
 * - viewers and operators may use any id except a device's (`<device>` or `<device>.<...>`, for
 *   every device with a grants record, which the users CLI writes for each device);
 * - the admin is not bound.
 * Others are refused with CONNACK "not authorized" (135 in MQTT 5, 5 in MQTT 3.1.1). Harper calls
 * this hook synchronously, so the device lookup reads the grants table's store synchronously (one
 * read per CONNECT).
 */
export function deviceMayUseClientId(username: string, clientId: string): boolean {
  return clientId === '' || clientId === username || clientId.startsWith(`${username}.`);
}

interface SyncStore {
  get(id: string): unknown;
}
const grantsStore = (tables.devices as unknown as { primaryStore?: SyncStore } | undefined)?.primaryStore;

function isDeviceName(name: string): boolean {
  return name !== '' && grantsStore?.get(name) != null;
}

function refuse(packet: ConnectPacket, message: string): never {
  logger.warn?.(`MQTT CONNECT refused: ${message}`);
  throw Object.assign(new Error(message), {
    code: packet.protocolVersion === 5 ? MQTT5_REASON.NOT_AUTHORIZED : MQTT3_CONNACK.NOT_AUTHORIZED,
  });
}

if (mqtt) {
  mqtt.authorizeClient = (packet, user) => {
    // MQTT 3.1.1 §3.1.3-8: a client that sends an empty client id must ask for a clean session,
    // else the server answers CONNACK 0x02 and closes (Harper accepted it). MQTT 5 instead
    // assigns an id to an empty one, clean start or not.
    if (packet.protocolVersion !== 5 && !packet.clientId && packet.clean === false) {
      logger.warn?.('MQTT CONNECT refused: an empty client id needs a clean session (MQTT 3.1.1)');
      throw Object.assign(new Error('an empty client id needs a clean session'), {
        code: MQTT3_CONNACK.IDENTIFIER_REJECTED,
      });
    }
    const role = roleOf(user);
    if (!user || role === 'admin') return;
    const clientId = packet.clientId ?? '';
    if (role === 'device') {
      if (!deviceMayUseClientId(user.username, clientId))
        refuse(
          packet,
          `device "${user.username}" may not use client id "${clientId}" (only "${user.username}" or "${user.username}.<suffix>")`,
        );
      return;
    }
    const owner = clientId.split('.')[0];
    if (owner !== user.username && isDeviceName(owner))
      refuse(packet, `user "${user.username}" may not use client id "${clientId}": it belongs to device "${owner}"`);
  };
}

events?.on('error', (error, _socket, packet, session) => {
  if (packet?.cmd !== 'publish') return;
  const status = (error as { statusCode?: number } | undefined)?.statusCode;
  if (!isRefusal(error) && status !== 401 && status !== 403) return; // anything else Harper logs itself
  const reason = isRefusal(error) ? error.toString() : `forbidden: ${(error as Error).message}`;
  logger.warn?.(
    `MQTT publish refused: client "${session?.sessionId ?? '?'}" user "${session?.user?.username ?? '?'}" topic "${packet.topic}": ${reason}`,
  );
});
