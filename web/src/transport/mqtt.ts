/**
 * A subscription to one MQTT topic over WebSocket, with mqtt.js (the global `mqtt`, from
 * /vendor/mqtt.min.js). The broker is Harper on the page's own host and port; the connection
 * is authenticated by the session cookie first, and by the password typed into the page if the
 * broker does not take the cookie. mqtt.js's own reconnect is off: reconnect.ts decides, as for
 * SSE and WebSocket.
 *
 * MQTT has no event types and no resume point in the payload: a message is the record as
 * published (an empty payload is a delete), and a new subscription starts with the current state.
 */
import { rememberedCredentials } from '../auth.js';
import { MQTT3_CONNACK, MQTT5_REASON } from '../shared/codes.js';
import { seconds } from './reconnect.js';
import { BaseTransport, type TransportOptions } from './transport.js';

export interface MqttTransportOptions<T> extends TransportOptions<T> {
  /** e.g. `sensors/101`. */
  topic: string;
  clientId: string;
}

const CONNECT_TIMEOUT_MS = 8000;

/** The CONNACK codes that mean the credentials were not taken (MQTT 5, and 3.1.1 should mqtt.js report those). */
const CREDENTIALS_REFUSED: ReadonlySet<number> = new Set([
  MQTT5_REASON.BAD_USERNAME_OR_PASSWORD,
  MQTT5_REASON.NOT_AUTHORIZED,
  MQTT3_CONNACK.BAD_USERNAME_OR_PASSWORD,
  MQTT3_CONNACK.NOT_AUTHORIZED,
]);

/**
 * Whether connections send the password typed into this page instead of relying on the cookie:
 * set once the broker refused the cookie (or the user typed a password for it), for the page's
 * life, since the broker would refuse the cookie again.
 */
let sendPassword = false;

export class MqttTransport<T> extends BaseTransport<T> {
  private client: MqttClient | undefined;

  constructor(protected override readonly options: MqttTransportOptions<T>) {
    super(options);
  }

  /** After the user typed the password into the page's prompt for the broker. */
  usePassword(): void {
    sendPassword = true;
    this.reconnect.reset();
    this.open('connecting');
  }

  protected connect(): void {
    this.open(this.connections === 0 ? 'connecting' : 'reconnecting');
  }

  protected close(): void {
    const client = this.client;
    this.client = undefined;
    client?.end(true);
  }

  private open(state: 'connecting' | 'reconnecting'): void {
    this.reconnect.cancel();
    this.connections++;
    this.close();
    const credentials = sendPassword ? rememberedCredentials() : undefined;
    const as = credentials ? `as ${credentials.username}` : 'with the session cookie';
    this.setState(state, as);
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
    const client = mqtt.connect(url, {
      protocolVersion: 5,
      clientId: this.options.clientId,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: CONNECT_TIMEOUT_MS,
      ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
    });
    this.client = client;
    const topic = this.options.topic;
    let refusal: MqttError | undefined;
    let connected = false;
    client.on('connect', () => {
      if (this.client !== client) return;
      connected = true;
      this.connectedAt = Date.now();
      client.subscribe(topic, { qos: 1 }, (error, granted) => {
        if (this.client !== client) return;
        const code = granted?.[0]?.qos ?? MQTT5_REASON.FAILURE;
        if (error || code >= MQTT5_REASON.FAILURE) {
          this.reconnect.refused();
          this.setState('denied', `subscription to ${topic} refused (${error?.message ?? code})`);
          return;
        }
        this.reconnect.succeeded();
        this.setState('live', as);
      });
    });
    client.on('message', (messageTopic, payload) => {
      if (this.client !== client) return;
      const text = new TextDecoder().decode(payload);
      let value: T | null;
      try {
        value = text === '' ? null : (JSON.parse(text) as T | null);
      } catch {
        return;
      }
      // Harper's topics are `<table>/<id>`.
      this.options.onFrame(
        { id: messageTopic.slice(messageTopic.indexOf('/') + 1), type: value === null ? 'delete' : 'publish', value },
        this,
      );
    });
    client.on('error', (error) => {
      refusal = error;
    });
    client.on('close', () => {
      if (this.client !== client) return;
      client.end(true);
      this.client = undefined;
      const code = typeof refusal?.code === 'number' ? refusal.code : undefined;
      const credentialsRefused =
        !connected &&
        ((code !== undefined && CREDENTIALS_REFUSED.has(code)) || /authori|password/i.test(refusal?.message ?? ''));
      if (credentialsRefused) {
        if (!sendPassword && rememberedCredentials()) {
          // The broker did not take the cookie: CONNECT with the password from the sign-in form.
          sendPassword = true;
          this.open('connecting');
          return;
        }
        sendPassword = false;
        this.reconnect.refused();
        this.setState('needs-password', 'the broker did not accept the session cookie');
        return;
      }
      const delay = this.reconnect.failed();
      this.setState('reconnecting', `${refusal?.message ?? 'connection closed'}; retrying in ${seconds(delay)} s`);
    });
  }
}
