/**
 * One sensor's events as three protocols deliver them, side by side: SSE (/sensors/<id>),
 * WebSocket (ws(s)://host/sensors/<id>) and MQTT over WebSocket (topic sensors/<id>). For each
 * event: the latency on each protocol (arrival time minus the record's updatedAt, both in ms since
 * the epoch, so clocks must agree) and the order in which the protocols delivered it.
 */
import { idPath } from './api.js';
import { rememberedCredentials, remember } from './auth.js';
import { byId, el, formatNumber, formatTime, frameScheduler, setText } from './dom.js';
import { LiveStream, type StreamState } from './stream.js';
import type { Frame, Sensor } from './types.js';

export type Protocol = 'sse' | 'ws' | 'mqtt';
const PROTOCOLS: Protocol[] = ['sse', 'ws', 'mqtt'];
const NAMES: Record<Protocol, string> = { sse: 'SSE', ws: 'WebSocket', mqtt: 'MQTT over WebSocket' };
const ROWS = 12;
/** An event older than its connection by more than this is a replay (current state or resume). */
const REPLAY_SLACK_MS = 50;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 15000];

interface Arrival {
  protocol: Protocol;
  at: number;
  latency: number | undefined;
  replay: boolean;
}

interface EventRow {
  key: string;
  updatedAt: number | undefined;
  temperature: number | undefined;
  type: string;
  arrivals: Arrival[];
  firstSeen: number;
}

export type LaneState = StreamState | 'needs-password' | 'denied';

/** MQTT over WebSocket with mqtt.js: cookie first, the in-memory password if the broker wants one. */
class MqttLane {
  state: LaneState = 'idle';
  detail = '';
  connectedAt = 0;
  connections = 0;
  private client: MqttClient | undefined;
  private topic = '';
  private retry = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private useCredentials = false;
  private readonly clientId = `dashboard-${Math.random().toString(36).slice(2, 10)}`;
  private listeners = new Set<(state: LaneState, detail: string) => void>();

  constructor(private readonly onMessage: (value: Sensor | null, receivedAt: number) => void) {}

  onState(listener: (state: LaneState, detail: string) => void): void {
    this.listeners.add(listener);
    listener(this.state, this.detail);
  }

  private setState(state: LaneState, detail: string): void {
    this.state = state;
    this.detail = detail;
    for (const listener of this.listeners) listener(state, detail);
  }

  start(sensorId: string): void {
    this.stop();
    this.topic = `sensors/${sensorId}`;
    this.retry = 0;
    this.connections = 0;
    this.connect('connecting');
  }

  stop(): void {
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    client?.end(true);
    this.setState('stopped', '');
  }

  /** After the user typed the password into the lane's own prompt. */
  retryWithPassword(): void {
    this.useCredentials = true;
    this.retry = 0;
    this.connect('connecting');
  }

  private connect(state: 'connecting' | 'reconnecting'): void {
    clearTimeout(this.timer);
    this.connections++;
    this.client?.end(true);
    const credentials = this.useCredentials ? rememberedCredentials() : undefined;
    this.setState(state, credentials ? `as ${credentials.username}` : 'with the session cookie');
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
    const client = mqtt.connect(url, {
      protocolVersion: 5,
      clientId: this.clientId,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 8000,
      ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
    });
    this.client = client;
    let refused: MqttError | undefined;
    let connected = false;
    client.on('connect', () => {
      if (this.client !== client) return;
      connected = true;
      this.connectedAt = Date.now();
      client.subscribe(this.topic, { qos: 1 }, (error, granted) => {
        if (this.client !== client) return;
        const code = granted?.[0]?.qos ?? 0x80;
        if (error || code >= 0x80) {
          this.setState('denied', `subscription to ${this.topic} refused (${error?.message ?? code})`);
          return;
        }
        this.retry = 0;
        this.setState('live', credentials ? `as ${credentials.username}` : 'with the session cookie');
      });
    });
    client.on('message', (_topic, payload) => {
      if (this.client !== client) return;
      const receivedAt = Date.now();
      const text = new TextDecoder().decode(payload);
      let value: Sensor | null = null;
      try {
        value = text === '' ? null : (JSON.parse(text) as Sensor | null);
      } catch {
        return;
      }
      this.onMessage(value, receivedAt);
    });
    client.on('error', (error) => {
      refused = error;
    });
    client.on('close', () => {
      if (this.client !== client) return;
      client.end(true);
      this.client = undefined;
      const code = typeof refused?.code === 'number' ? refused.code : undefined;
      const notAuthorized = !connected && (code === 134 || code === 135 || code === 4 || code === 5 || /authori|password/i.test(refused?.message ?? ''));
      if (notAuthorized) {
        if (!this.useCredentials && rememberedCredentials()) {
          // The broker did not take the cookie: CONNECT with the password from the sign-in form.
          this.useCredentials = true;
          this.connect('connecting');
          return;
        }
        this.useCredentials = false;
        this.setState('needs-password', 'the broker did not accept the session cookie');
        return;
      }
      const delay = BACKOFF_MS[Math.min(this.retry, BACKOFF_MS.length - 1)] ?? 15000;
      this.retry++;
      this.setState('reconnecting', `${refused?.message ?? 'connection closed'}; retrying in ${delay / 1000} s`);
      this.timer = setTimeout(() => this.connect('reconnecting'), delay);
    });
  }

  reconnectNow(): void {
    if (this.state === 'stopped' || this.state === 'idle' || !this.topic) return;
    this.retry = 0;
    this.connect('reconnecting');
  }
}

export class ProtocolPanel {
  private sensorId: string | undefined;
  private rows = new Map<string, EventRow>();
  private received: Record<Protocol, number> = { sse: 0, ws: 0, mqtt: 0 };
  private duplicates: Record<Protocol, number> = { sse: 0, ws: 0, mqtt: 0 };
  private sse: LiveStream<Sensor> | undefined;
  private ws: LiveStream<Sensor> | undefined;
  private readonly mqttLane: MqttLane;
  private readonly states: Record<Protocol, { state: LaneState; detail: string; connectedAt: () => number }>;
  private readonly schedule = frameScheduler(() => this.render());

  private readonly form = byId('protocol-form', HTMLFormElement);
  private readonly input = byId('protocol-sensor', HTMLInputElement);
  private readonly table = byId('protocol-events', HTMLTableSectionElement);
  private readonly empty = byId('protocol-empty', HTMLElement);
  private readonly passwordForm = byId('mqtt-password-form', HTMLFormElement);
  private readonly passwordInput = byId('mqtt-password', HTMLInputElement);

  constructor(
    private readonly session: () => { username: string } | undefined,
    private readonly onStreams: (streams: LiveStream<Sensor>[]) => void,
    private readonly onSignedOut: () => void,
  ) {
    this.mqttLane = new MqttLane((value, at) => this.arrive('mqtt', value ? (value.updatedAt === undefined ? 'message' : 'put') : 'delete', value, at, this.mqttLane.connectedAt));
    this.states = {
      sse: { state: 'idle', detail: '', connectedAt: () => this.sse?.connectedAt ?? 0 },
      ws: { state: 'idle', detail: '', connectedAt: () => this.ws?.connectedAt ?? 0 },
      mqtt: { state: 'idle', detail: '', connectedAt: () => this.mqttLane.connectedAt },
    };
    this.mqttLane.onState((state, detail) => {
      this.states.mqtt = { ...this.states.mqtt, state, detail };
      this.passwordForm.hidden = state !== 'needs-password';
      this.schedule();
    });
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const id = this.input.value.trim();
      if (id) this.watch(id);
    });
    this.passwordForm.addEventListener('submit', (event) => {
      event.preventDefault();
      const user = this.session();
      if (!user || !this.passwordInput.value) return;
      remember(user.username, this.passwordInput.value);
      this.passwordInput.value = '';
      this.mqttLane.retryWithPassword();
    });
    for (const protocol of PROTOCOLS) {
      byId(`lane-${protocol}-reconnect`, HTMLButtonElement).addEventListener('click', () => {
        if (protocol === 'sse') void this.sse?.reconnectNow();
        else if (protocol === 'ws') void this.ws?.reconnectNow();
        else this.mqttLane.reconnectNow();
      });
    }
    this.render();
  }

  get watching(): string | undefined {
    return this.sensorId;
  }

  watch(sensorId: string): void {
    if (sensorId === this.sensorId) return;
    this.stop();
    this.sensorId = sensorId;
    this.input.value = sensorId;
    this.rows.clear();
    this.received = { sse: 0, ws: 0, mqtt: 0 };
    this.duplicates = { sse: 0, ws: 0, mqtt: 0 };
    const path = `/sensors/${idPath(sensorId)}`;
    const make = (protocol: 'sse' | 'ws') => {
      const stream = new LiveStream<Sensor>({
        label: `${NAMES[protocol]} · ${sensorId}`,
        transport: protocol,
        path,
        onFrame: (frame: Frame<Sensor>, source) => this.arrive(protocol, frame.type, frame.value, Date.now(), source.connectedAt),
        onSignedOut: this.onSignedOut,
      });
      stream.onState((state, detail) => {
        this.states[protocol] = { ...this.states[protocol], state, detail };
        this.schedule();
      });
      return stream;
    };
    this.sse = make('sse');
    this.ws = make('ws');
    this.onStreams([this.sse, this.ws]);
    this.sse.start();
    this.ws.start();
    this.mqttLane.start(sensorId);
    this.schedule();
  }

  stop(): void {
    this.sse?.stop();
    this.ws?.stop();
    this.mqttLane.stop();
    this.sse = undefined;
    this.ws = undefined;
    this.sensorId = undefined;
  }

  private arrive(protocol: Protocol, type: string, value: Sensor | null, at: number, connectedAt: number): void {
    const updatedAt = typeof value?.updatedAt === 'number' ? value.updatedAt : undefined;
    const key = updatedAt !== undefined ? `t${updatedAt}` : `${type}:${JSON.stringify(value)}`;
    let row = this.rows.get(key);
    if (!row) {
      row = { key, updatedAt, temperature: typeof value?.temperature === 'number' ? value.temperature : undefined, type, arrivals: [], firstSeen: at };
      this.rows.set(key, row);
    }
    this.received[protocol]++;
    const replay = updatedAt !== undefined && updatedAt < connectedAt - REPLAY_SLACK_MS;
    if (row.arrivals.some((arrival) => arrival.protocol === protocol)) {
      // The same event twice on one protocol: SSE and WebSocket resume after their last event and
      // must never repeat one. MQTT has no such resume: a new subscription starts with the current
      // state again, which is expected.
      if (!(protocol === 'mqtt' && replay)) this.duplicates[protocol]++;
      this.schedule();
      return;
    }
    row.arrivals.push({ protocol, at, latency: updatedAt !== undefined ? at - updatedAt : undefined, replay });
    if (this.rows.size > ROWS * 4) {
      const keep = [...this.rows.values()].sort((a, b) => b.firstSeen - a.firstSeen).slice(0, ROWS * 2);
      this.rows = new Map(keep.map((kept) => [kept.key, kept]));
    }
    this.schedule();
  }

  private render(): void {
    const rows = [...this.rows.values()].sort((a, b) => (b.updatedAt ?? b.firstSeen) - (a.updatedAt ?? a.firstSeen)).slice(0, ROWS);
    for (const protocol of PROTOCOLS) this.renderLane(protocol);
    this.empty.hidden = rows.length > 0;
    setText(this.empty, this.sensorId ? `Waiting for sensor ${this.sensorId}'s events…` : 'Choose a sensor to watch its events arrive over each protocol.');
    this.table.replaceChildren(
      ...rows.map((row) => {
        const ordered = [...row.arrivals].sort((a, b) => a.at - b.at);
        const cells = PROTOCOLS.map((protocol) => {
          const arrival = row.arrivals.find((candidate) => candidate.protocol === protocol);
          if (!arrival) return el('td', { class: 'lane-cell pending', 'data-protocol': protocol }, '…');
          const rank = ordered.indexOf(arrival) + 1;
          if (arrival.replay) return el('td', { class: 'lane-cell replay', 'data-protocol': protocol, title: 'sent on (re)connection: the state at subscription, or a resumed event' }, 'replay');
          const latency = arrival.latency === undefined ? '—' : `${Math.max(0, Math.round(arrival.latency))} ms`;
          return el(
            'td',
            { class: `lane-cell rank-${rank}`, 'data-protocol': protocol, 'data-latency': arrival.latency === undefined ? '' : String(arrival.latency) },
            el('span', { class: 'latency' }, latency),
            ' ',
            el('span', { class: 'rank', 'aria-label': `arrived ${ordinal(rank)}` }, ordinal(rank)),
          );
        });
        return el(
          'tr',
          { 'data-key': row.key },
          el('td', {}, row.updatedAt !== undefined ? formatTime(row.updatedAt) : row.type === 'message' ? 'not stored' : row.type),
          el('td', { class: 'num' }, formatNumber(row.temperature)),
          ...cells,
        );
      }),
    );
  }

  private renderLane(protocol: Protocol): void {
    const { state, detail } = this.states[protocol];
    const root = byId(`lane-${protocol}`, HTMLElement);
    root.dataset.state = state;
    root.dataset.received = String(this.received[protocol]);
    root.dataset.connections = String(protocol === 'sse' ? (this.sse?.connections ?? 0) : protocol === 'ws' ? (this.ws?.connections ?? 0) : this.mqttLane.connections);
    root.dataset.duplicates = String(this.duplicates[protocol]);
    setText(byId(`lane-${protocol}-state`, HTMLElement), stateWords(state));
    setText(byId(`lane-${protocol}-detail`, HTMLElement), detail);
    const live = [...this.rows.values()].flatMap((row) => row.arrivals.filter((arrival) => arrival.protocol === protocol && !arrival.replay && arrival.latency !== undefined));
    const latencies = live.map((arrival) => arrival.latency ?? 0).sort((a, b) => a - b);
    // Arrival order only means something for live events seen on more than one protocol.
    const firsts = [...this.rows.values()].filter(
      (row) => row.arrivals.length > 1 && !row.arrivals.some((arrival) => arrival.replay) && [...row.arrivals].sort((a, b) => a.at - b.at)[0]?.protocol === protocol,
    ).length;
    const median = latencies.length ? latencies[Math.floor(latencies.length / 2)] : undefined;
    const last = live.length ? live[live.length - 1]?.latency : undefined;
    setText(
      byId(`lane-${protocol}-summary`, HTMLElement),
      (latencies.length ? `${latencies.length} live · last ${Math.round(last ?? 0)} ms · median ${Math.round(median ?? 0)} ms · first ${firsts}×` : 'no live events yet') +
        (this.duplicates[protocol] > 0 ? ` · ${this.duplicates[protocol]} duplicate${this.duplicates[protocol] === 1 ? '' : 's'}` : ''),
    );
    byId(`lane-${protocol}-reconnect`, HTMLButtonElement).disabled = this.sensorId === undefined;
  }
}

function ordinal(rank: number): string {
  return rank === 1 ? '1st' : rank === 2 ? '2nd' : rank === 3 ? '3rd' : `${rank}th`;
}

export function stateWords(state: LaneState): string {
  switch (state) {
    case 'idle':
      return 'idle';
    case 'connecting':
      return 'connecting';
    case 'waiting':
      return 'no events yet';
    case 'live':
      return 'live';
    case 'reconnecting':
      return 'reconnecting';
    case 'signed-out':
      return 'signed out';
    case 'stopped':
      return 'stopped';
    case 'needs-password':
      return 'needs password';
    case 'denied':
      return 'denied';
  }
}
