/**
 * MQTT 3.1.1 has no way to tell a publisher that its message was refused (a QoS 1 publish is
 * answered with a plain PUBACK either way). Harper emits an `error` event for a publish that its
 * resource refused, for bad input or for lack of rights; log it with the client id so an operator
 * can find the misbehaving device. MQTT 5 clients additionally receive reason code 128
 * (unspecified error: Harper uses it for every refused publish) in their PUBACK.
 */
import { logger, server } from 'harperdb';
import { isRefusal } from './errors.js';

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

const events = (server as unknown as { mqtt?: { events?: MqttEvents } }).mqtt?.events;
events?.on('error', (error, _socket, packet, session) => {
  if (packet?.cmd !== 'publish') return;
  const status = (error as { statusCode?: number } | undefined)?.statusCode;
  if (!isRefusal(error) && status !== 401 && status !== 403) return; // anything else Harper logs itself
  const reason = isRefusal(error) ? error.toString() : `forbidden: ${(error as Error).message}`;
  logger.warn?.(`MQTT publish refused: client "${session?.sessionId ?? '?'}" user "${session?.user?.username ?? '?'}" topic "${packet.topic}": ${reason}`);
});
