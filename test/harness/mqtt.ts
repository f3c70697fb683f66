/** MQTT transport (mqtt.js over TCP, or over WebSocket on the HTTP port). */
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient, type Packet } from 'mqtt';
import type { AdminCredentials } from '../../launcher/harper-process.js';
import type { HarperEndpoints } from './harper.js';
import { Inbox, type Subscriber } from './inbox.js';

let clientCount = 0;

export interface MqttOptions {
  protocolVersion?: 4 | 5;
  overWebSocket?: boolean;
  credentials?: AdminCredentials | null;
  clientId?: string;
  clean?: boolean;
  /** How long to wait for CONNACK (default 5 s). */
  connectTimeoutMs?: number;
  /** Attached before CONNECT is sent: a resumed session delivers queued messages right after CONNACK. */
  onMessage?: (topic: string, payload: Buffer, packet: IPublishPacket) => void;
}

export function connectMqtt(harper: HarperEndpoints, options: MqttOptions = {}): Promise<MqttClient> {
  const credentials = options.credentials === undefined ? harper.admin : options.credentials;
  const url = options.overWebSocket ? harper.wsUrl + '/mqtt' : harper.mqttUrl;
  const clientOptions: IClientOptions = {
    protocolVersion: options.protocolVersion ?? 5,
    // Device users may only use client ids under their own name (lib/mqtt/connections.ts).
    clientId:
      options.clientId ?? `${credentials ? credentials.username + '.' : ''}test-${process.pid}-${++clientCount}`,
    clean: options.clean ?? true,
    reconnectPeriod: 0,
    connectTimeout: options.connectTimeoutMs ?? 5000,
    ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
  };
  const client = mqtt.connect(url, clientOptions);
  if (options.onMessage) client.on('message', options.onMessage);
  return new Promise((resolve, reject) => {
    client.once('connect', () => {
      client.off('error', reject);
      resolve(client);
    });
    client.once('error', (error) => {
      client.end(true);
      reject(error);
    });
  });
}

/** Parses a payload as JSON; a delete arrives as an empty or `null` payload. */
export function parsePayload(payload: Buffer): unknown {
  const text = payload.toString();
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function mqttSubscriber(
  harper: HarperEndpoints,
  filter: string,
  options: MqttOptions & { name?: string; qos?: 0 | 1 } = {},
): Promise<Subscriber & { client: MqttClient }> {
  const client = await connectMqtt(harper, options);
  const inbox = new Inbox();
  client.on('message', (topic, payload) =>
    inbox.push({ topic, type: 'publish', value: parsePayload(payload), at: performance.now() }),
  );
  const granted = await client.subscribeAsync(filter, { qos: options.qos ?? 1 });
  const code = granted[0]?.qos;
  if (code === undefined || code >= 0x80) throw new Error(`subscription to ${filter} refused (${code})`);
  return { name: options.name ?? `mqtt ${filter}`, inbox, client, close: () => client.endAsync() };
}

/** The reason code of a PUBACK (MQTT 5); 0 when absent (success, or MQTT 3.1.1). */
export function reasonCodeOf(packet: Packet | undefined): number {
  return packet && 'reasonCode' in packet && typeof packet.reasonCode === 'number' ? packet.reasonCode : 0;
}
