/**
 * The alerts panel: the last 20 alerts (GET /alerts/), then every new one over SSE on the alerts
 * table. The stream starts a little before the list was read (the server's clock, from the Date
 * header) so that nothing falls between the two; an alert seen twice is shown once.
 */
import { describeError, request } from './api.js';
import { el, formatDateTime, frameScheduler, isoTime, setText } from './dom.js';
import { SseTransport } from './transport/sse.js';
import type { Alert, Frame } from './types.js';

const SHOWN = 20;
/** How far before the list's Date header the stream starts (the header has 1 s resolution). */
const OVERLAP_MS = 2000;
/** How far before the list the stream may start at most (well inside the server's replay window). */
const REPLAY_REACH_MS = 5 * 60_000;

export class AlertsPanel {
  private alerts = new Map<string, Alert>();
  private stream: SseTransport<Alert> | undefined;
  private readonly schedule = frameScheduler(() => this.render());

  constructor(
    private readonly list: HTMLOListElement,
    private readonly summary: HTMLElement,
    private readonly onStream: (stream: SseTransport<Alert>) => void,
    private readonly onSignedOut: () => void,
  ) {}

  async start(): Promise<void> {
    this.alerts.clear();
    this.schedule();
    let since = Date.now() - OVERLAP_MS;
    try {
      const { data, header } = await request<Alert[]>('GET', `/alerts/?sort(-time)&limit(${SHOWN})`);
      for (const alert of data ?? []) this.alerts.set(alert.id, alert);
      const date = Date.parse(header('date') ?? '');
      if (Number.isFinite(date)) since = date - OVERLAP_MS;
      const newest = Math.max(0, ...(data ?? []).map((alert) => alert.time));
      // Never further back than REPLAY_REACH_MS: the server refuses a table replay that starts
      // beyond its window (10 minutes by default), and the list above already holds what is older.
      if (newest > 0) since = Math.max(Math.min(since, newest), since - REPLAY_REACH_MS);
    } catch (error) {
      setText(this.summary, `Could not load alerts: ${describeError(error)}`);
    }
    this.schedule();
    this.stream = new SseTransport<Alert>({
      label: 'Alerts',
      path: '/alerts/',
      firstQuery: { startTime: String(since) },
      onFrame: (frame) => this.receive(frame),
      onSignedOut: this.onSignedOut,
    });
    this.onStream(this.stream);
    this.stream.start();
  }

  stop(): void {
    this.stream?.stop();
    this.stream = undefined;
  }

  private receive(frame: Frame<Alert>): void {
    if (frame.type === 'delete' || !frame.value) {
      this.alerts.delete(frame.id);
    } else {
      const alert = { ...frame.value, id: frame.value.id ?? frame.id };
      this.alerts.set(alert.id, alert);
    }
    this.schedule();
  }

  private render(): void {
    const newest = [...this.alerts.values()].sort((a, b) => b.time - a.time).slice(0, SHOWN);
    // Forget what can no longer be shown.
    if (this.alerts.size > SHOWN * 2) this.alerts = new Map(newest.map((alert) => [alert.id, alert]));
    // The current state of each rule × sensor is its latest alert.
    const current = new Map<string, Alert>();
    for (const alert of newest)
      if (!current.has(`${alert.ruleId} ${alert.sensorId}`)) current.set(`${alert.ruleId} ${alert.sensorId}`, alert);
    const firing = [...current.values()].filter((alert) => alert.state === 'firing').length;
    setText(
      this.summary,
      newest.length === 0
        ? 'No alerts. Operators add rules with PUT /rules/<id>.'
        : firing > 0
          ? `${firing} firing now`
          : 'Nothing firing now',
    );
    this.summary.classList.toggle('firing', firing > 0);
    const items = newest.map((alert) => {
      const item = el(
        'li',
        { class: `alert alert-${alert.state}`, 'data-alert-id': alert.id },
        el('span', { class: 'alert-state' }, alert.state),
        el(
          'span',
          { class: 'alert-text' },
          el('strong', {}, alert.ruleId),
          ` · sensor ${alert.sensorId} · ${alert.field} ${typeof alert.value === 'number' ? alert.value : ''}`,
        ),
        el('time', { datetime: isoTime(alert.time) }, formatDateTime(alert.time)),
      );
      return item;
    });
    this.list.replaceChildren(...items);
  }
}
