/**
 * The selected sensor's history: its last 200 readings (GET /readings/), kept current by the live
 * sensor stream, and its rolling statistics (GET /stats/<id>).
 */
import { describeError, getJson, idPath } from './api.js';
import { TimeChart, type Point } from './chart.js';
import { el, formatDateTime, formatNumber, formatTime, setText } from './dom.js';
import type { SensorStore } from './sensors.js';
import type { FieldStats, Reading, Stats, StatsField } from './types.js';

const HISTORY_LIMIT = 200;
const TABLE_ROWS = 8;
/** Statistics are re-read at most this often while readings arrive. */
const STATS_REFRESH_MS = 5000;

const FIELDS: { field: StatsField; label: string; unit: string }[] = [
  { field: 'temperature', label: 'Temperature', unit: '°C' },
  { field: 'humidity', label: 'Humidity', unit: '%' },
  { field: 'battery', label: 'Battery', unit: '%' },
];

export class HistoryPanel {
  private selected: string | undefined;
  private readings: Reading[] = [];
  private chart: TimeChart | undefined;
  private token = 0;
  private statsTimer: ReturnType<typeof setTimeout> | undefined;
  private statsLoadedAt = 0;

  constructor(
    store: SensorStore,
    private readonly parts: {
      title: HTMLElement;
      status: HTMLElement;
      body: HTMLElement;
      chart: HTMLElement;
      stats: HTMLElement;
      table: HTMLTableSectionElement;
      close: HTMLButtonElement;
    },
    onClose: () => void,
  ) {
    store.subscribe((id, entry, frame) => {
      if (id !== this.selected || !entry || frame.type === 'message') return;
      const sensor = entry.sensor;
      const time = sensor.updatedAt;
      if (typeof time !== 'number' || this.readings.some((reading) => reading.time === time)) return;
      this.readings.unshift({
        id: `${id}@${time}`,
        sensorId: id,
        time,
        deviceTime: sensor.time,
        location: sensor.location,
        temperature: sensor.temperature,
        humidity: sensor.humidity,
        battery: sensor.battery,
      });
      if (this.readings.length > HISTORY_LIMIT) this.readings.length = HISTORY_LIMIT;
      this.draw();
      this.refreshStatsSoon();
    });
    parts.close.addEventListener('click', onClose);
  }

  async select(id: string | undefined): Promise<void> {
    const token = ++this.token;
    this.selected = id;
    this.readings = [];
    clearTimeout(this.statsTimer);
    this.parts.body.hidden = id === undefined;
    this.parts.close.hidden = id === undefined;
    if (id === undefined) {
      setText(this.parts.title, 'History');
      setText(this.parts.status, 'Select a sensor in the grid to see its last 200 readings and its statistics.');
      this.chart?.destroy();
      this.chart = undefined;
      return;
    }
    setText(this.parts.title, `History of sensor ${id}`);
    setText(this.parts.status, 'Loading…');
    this.chart ??= new TimeChart(this.parts.chart, { height: 240 });
    this.draw();
    const [readings, stats] = await Promise.allSettled([
      getJson<Reading[]>(`/readings/?sensorId=${encodeURIComponent(id)}&sort(-time)&limit(${HISTORY_LIMIT})`),
      getJson<Stats>(`/stats/${idPath(id)}`),
    ]);
    if (token !== this.token) return;
    if (readings.status === 'fulfilled') {
      // Live readings that arrived while loading are kept; the list stays newest first.
      const known = new Set(this.readings.map((reading) => reading.time));
      this.readings = [...this.readings, ...readings.value.filter((reading) => !known.has(reading.time))]
        .sort((a, b) => b.time - a.time)
        .slice(0, HISTORY_LIMIT);
      setText(
        this.parts.status,
        this.readings.length === 0
          ? 'No stored readings yet.'
          : `Last ${this.readings.length} readings, newest first. Live.`,
      );
    } else {
      setText(this.parts.status, `Could not load the history: ${describeError(readings.reason)}`);
    }
    this.draw();
    if (stats.status === 'fulfilled') this.drawStats(stats.value);
    else
      this.parts.stats.replaceChildren(
        el('p', { class: 'muted' }, `Statistics unavailable: ${describeError(stats.reason)}`),
      );
    this.statsLoadedAt = Date.now();
  }

  private refreshStatsSoon(): void {
    if (this.statsTimer !== undefined) return;
    const wait = Math.max(0, this.statsLoadedAt + STATS_REFRESH_MS - Date.now());
    this.statsTimer = setTimeout(async () => {
      this.statsTimer = undefined;
      const id = this.selected;
      if (id === undefined) return;
      const token = this.token;
      try {
        const stats = await getJson<Stats>(`/stats/${idPath(id)}`);
        if (token === this.token) this.drawStats(stats);
      } catch {
        // keep the last statistics shown
      }
      this.statsLoadedAt = Date.now();
    }, wait);
  }

  private draw(): void {
    const points: Point[] = [...this.readings].reverse().map((reading) => ({
      t: reading.time,
      temperature: typeof reading.temperature === 'number' ? reading.temperature : null,
      humidity: typeof reading.humidity === 'number' ? reading.humidity : null,
    }));
    this.chart?.setPoints(points);
    this.parts.table.replaceChildren(
      ...this.readings
        .slice(0, TABLE_ROWS)
        .map((reading) =>
          el(
            'tr',
            {},
            el('td', {}, formatTime(reading.time)),
            el('td', { class: 'num' }, formatNumber(reading.temperature)),
            el('td', { class: 'num' }, formatNumber(reading.humidity)),
            el('td', { class: 'num' }, formatNumber(reading.battery, 0)),
          ),
        ),
    );
  }

  private drawStats(stats: Stats): void {
    const cell = (value: FieldStats | undefined, pick: (value: FieldStats) => string) =>
      el('td', { class: 'num' }, value ? pick(value) : '–');
    const rows = FIELDS.flatMap(({ field, label, unit }) =>
      (['hour', 'day'] as const).map((window) => {
        const value = stats[window]?.[field];
        return el(
          'tr',
          {},
          el('th', { scope: 'row' }, `${label} (${unit}), last ${window}`),
          cell(value, (v) => String(v.count)),
          cell(value, (v) => formatNumber(v.min)),
          cell(value, (v) => formatNumber(v.mean)),
          cell(value, (v) => formatNumber(v.max)),
        );
      }),
    );
    const table = el(
      'table',
      { class: 'data-table stats-table' },
      el('caption', {}, `Rolling statistics, last update ${formatDateTime(stats.lastUpdate)}`),
      el(
        'thead',
        {},
        el(
          'tr',
          {},
          el('th', { scope: 'col' }, 'Field'),
          el('th', { scope: 'col' }, 'Count'),
          el('th', { scope: 'col' }, 'Min'),
          el('th', { scope: 'col' }, 'Mean'),
          el('th', { scope: 'col' }, 'Max'),
        ),
      ),
      el('tbody', {}, ...rows),
    );
    this.parts.stats.replaceChildren(table);
  }
}
