/**
 * MQTT 3.1.1 has no way to tell a publisher that its message was refused (a QoS 1 publish is
 * answered with a plain PUBACK either way). Harper emits an `error` event for a publish that its
 * resource refused; log it with the client id so an operator can find the misbehaving device.
 * MQTT 5 clients additionally receive reason code 128 (unspecified error) in their PUBACK.
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
  if (packet?.cmd !== 'publish' || !isRefusal(error)) return;
  logger.warn?.(
    `MQTT publish refused: client "${session?.sessionId ?? '?'}" user "${session?.user?.username ?? '?'}" topic "${packet.topic}": ${error.toString()}`,
  );
});
