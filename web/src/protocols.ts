/**
 * One sensor's events as three protocols deliver them, side by side: SSE (/sensors/<id>),
 * WebSocket (ws(s)://host/sensors/<id>) and MQTT over WebSocket (topic sensors/<id>). For each
 * event: the latency on each protocol (arrival time minus the record's updatedAt, both in ms since
 * the epoch, so clocks must agree) and the order in which the protocols delivered it.
 */
import { idPath } from './api.js';
import { remember } from './auth.js';
import { byId, el, formatNumber, formatTime, frameScheduler, setText } from './dom.js';
import { STATE_WORDS } from './status.js';
import { MqttTransport } from './transport/mqtt.js';
import { SseTransport } from './transport/sse.js';
import type { Transport, TransportState } from './transport/transport.js';
import { WsTransport } from './transport/ws.js';
import type { Frame, Sensor } from './types.js';

export type Protocol = 'sse' | 'ws' | 'mqtt';
const PROTOCOLS: Protocol[] = ['sse', 'ws', 'mqtt'];
const NAMES: Record<Protocol, string> = { sse: 'SSE', ws: 'WebSocket', mqtt: 'MQTT over WebSocket' };
const ROWS = 12;
/** An event older than its connection by more than this is a replay (current state or resume). */
const REPLAY_SLACK_MS = 50;

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

interface Lanes {
  sse: SseTransport<Sensor>;
  ws: WsTransport<Sensor>;
  mqtt: MqttTransport<Sensor>;
}

export class ProtocolPanel {
  private sensorId: string | undefined;
  private rows = new Map<string, EventRow>();
  private received: Record<Protocol, number> = { sse: 0, ws: 0, mqtt: 0 };
  private duplicates: Record<Protocol, number> = { sse: 0, ws: 0, mqtt: 0 };
  private lanes: Lanes | undefined;
  private states: Record<Protocol, { state: TransportState; detail: string }> = {
    sse: { state: 'idle', detail: '' },
    ws: { state: 'idle', detail: '' },
    mqtt: { state: 'idle', detail: '' },
  };
  /** The MQTT client id of this page: one for the page's life, whichever sensor it watches. */
  private readonly clientId = `dashboard-${Math.random().toString(36).slice(2, 10)}`;
  private readonly schedule = frameScheduler(() => this.render());

  private readonly form = byId('protocol-form', HTMLFormElement);
  private readonly input = byId('protocol-sensor', HTMLInputElement);
  private readonly table = byId('protocol-events', HTMLTableSectionElement);
  private readonly empty = byId('protocol-empty', HTMLElement);
  private readonly passwordForm = byId('mqtt-password-form', HTMLFormElement);
  private readonly passwordInput = byId('mqtt-password', HTMLInputElement);

  constructor(
    private readonly session: () => { username: string } | undefined,
    private readonly onStreams: (streams: Transport[]) => void,
    private readonly onSignedOut: () => void,
  ) {
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
      this.lanes?.mqtt.usePassword();
    });
    for (const protocol of PROTOCOLS) {
      byId(`lane-${protocol}-reconnect`, HTMLButtonElement).addEventListener('click', () =>
        this.lanes?.[protocol].reconnectNow(),
      );
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
    const label = (protocol: Protocol) => `${NAMES[protocol]} · ${sensorId}`;
    const path = `/sensors/${idPath(sensorId)}`;
    const arrive = (protocol: Protocol) => (frame: Frame<Sensor>, transport: Transport) =>
      this.arrive(protocol, frame.type, frame.value, Date.now(), transport.connectedAt);
    const lanes: Lanes = {
      sse: new SseTransport<Sensor>({
        label: label('sse'),
        path,
        onFrame: arrive('sse'),
        onSignedOut: this.onSignedOut,
      }),
      ws: new WsTransport<Sensor>({ label: label('ws'), path, onFrame: arrive('ws'), onSignedOut: this.onSignedOut }),
      mqtt: new MqttTransport<Sensor>({
        label: label('mqtt'),
        topic: `sensors/${sensorId}`,
        clientId: this.clientId,
        // MQTT carries no event type: an update without updatedAt is a publish that was not stored.
        onFrame: (frame, transport) =>
          this.arrive(
            'mqtt',
            frame.value ? (frame.value.updatedAt === undefined ? 'message' : 'put') : 'delete',
            frame.value,
            Date.now(),
            transport.connectedAt,
          ),
      }),
    };
    for (const protocol of PROTOCOLS) {
      lanes[protocol].onState((state, detail) => {
        this.states[protocol] = { state, detail };
        if (protocol === 'mqtt') this.passwordForm.hidden = state !== 'needs-password';
        this.schedule();
      });
    }
    this.lanes = lanes;
    this.onStreams(PROTOCOLS.map((protocol) => lanes[protocol]));
    for (const protocol of PROTOCOLS) lanes[protocol].start();
    this.schedule();
  }

  stop(): void {
    if (this.lanes) for (const protocol of PROTOCOLS) this.lanes[protocol].stop();
    this.lanes = undefined;
    this.sensorId = undefined;
  }

  private arrive(protocol: Protocol, type: string, value: Sensor | null, at: number, connectedAt: number): void {
    const updatedAt = typeof value?.updatedAt === 'number' ? value.updatedAt : undefined;
    const key = updatedAt !== undefined ? `t${updatedAt}` : `${type}:${JSON.stringify(value)}`;
    let row = this.rows.get(key);
    if (!row) {
      row = {
        key,
        updatedAt,
        temperature: typeof value?.temperature === 'number' ? value.temperature : undefined,
        type,
        arrivals: [],
        firstSeen: at,
      };
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
    const rows = [...this.rows.values()]
      .sort((a, b) => (b.updatedAt ?? b.firstSeen) - (a.updatedAt ?? a.firstSeen))
      .slice(0, ROWS);
    for (const protocol of PROTOCOLS) this.renderLane(protocol);
    this.empty.hidden = rows.length > 0;
    setText(
      this.empty,
      this.sensorId
        ? `Waiting for sensor ${this.sensorId}'s events…`
        : 'Choose a sensor to watch its events arrive over each protocol.',
    );
    this.table.replaceChildren(
      ...rows.map((row) => {
        const ordered = [...row.arrivals].sort((a, b) => a.at - b.at);
        const cells = PROTOCOLS.map((protocol) => {
          const arrival = row.arrivals.find((candidate) => candidate.protocol === protocol);
          if (!arrival) return el('td', { class: 'lane-cell pending', 'data-protocol': protocol }, '…');
          const rank = ordered.indexOf(arrival) + 1;
          if (arrival.replay)
            return el(
              'td',
              {
                class: 'lane-cell replay',
                'data-protocol': protocol,
                title: 'sent on (re)connection: the state at subscription, or a resumed event',
              },
              'replay',
            );
          const latency = arrival.latency === undefined ? '—' : `${Math.max(0, Math.round(arrival.latency))} ms`;
          return el(
            'td',
            {
              class: `lane-cell rank-${rank}`,
              'data-protocol': protocol,
              'data-latency': arrival.latency === undefined ? '' : String(arrival.latency),
            },
            el('span', { class: 'latency' }, latency),
            ' ',
            el('span', { class: 'rank', 'aria-label': `arrived ${ordinal(rank)}` }, ordinal(rank)),
          );
        });
        return el(
          'tr',
          { 'data-key': row.key },
          el(
            'td',
            {},
            row.updatedAt !== undefined ? formatTime(row.updatedAt) : row.type === 'message' ? 'not stored' : row.type,
          ),
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
    root.dataset.connections = String(this.lanes?.[protocol].connections ?? 0);
    root.dataset.duplicates = String(this.duplicates[protocol]);
    setText(byId(`lane-${protocol}-state`, HTMLElement), STATE_WORDS[state]);
    setText(byId(`lane-${protocol}-detail`, HTMLElement), detail);
    const live = [...this.rows.values()].flatMap((row) =>
      row.arrivals.filter(
        (arrival) => arrival.protocol === protocol && !arrival.replay && arrival.latency !== undefined,
      ),
    );
    const latencies = live.map((arrival) => arrival.latency ?? 0).sort((a, b) => a - b);
    // Arrival order only means something for live events seen on more than one protocol.
    const firsts = [...this.rows.values()].filter(
      (row) =>
        row.arrivals.length > 1 &&
        !row.arrivals.some((arrival) => arrival.replay) &&
        [...row.arrivals].sort((a, b) => a.at - b.at)[0]?.protocol === protocol,
    ).length;
    const median = latencies.length ? latencies[Math.floor(latencies.length / 2)] : undefined;
    const last = live.length ? live[live.length - 1]?.latency : undefined;
    setText(
      byId(`lane-${protocol}-summary`, HTMLElement),
      (latencies.length
        ? `${latencies.length} live · last ${Math.round(last ?? 0)} ms · median ${Math.round(median ?? 0)} ms · first ${firsts}×`
        : 'no live events yet') +
        (this.duplicates[protocol] > 0
          ? ` · ${this.duplicates[protocol]} duplicate${this.duplicates[protocol] === 1 ? '' : 's'}`
          : ''),
    );
    byId(`lane-${protocol}-reconnect`, HTMLButtonElement).disabled = this.sensorId === undefined;
  }
}

function ordinal(rank: number): string {
  return rank === 1 ? '1st' : rank === 2 ? '2nd' : rank === 3 ? '3rd' : `${rank}th`;
}
