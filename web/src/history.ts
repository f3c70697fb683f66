/**
 * The selected sensor's history: its last 200 readings (GET /readings/), kept current by the live
 * sensor stream, its rolling statistics (GET /stats/<id>), and a chart over the range the user
 * picks: raw readings for the last hour, minute rollups for a day, hour rollups for a week or a
 * month (GET /rollups/), so that no range asks for more than a few thousand points.
 */
import { describeError, getJson, idPath } from './api.js';
import { TimeChart, type Point } from './chart.js';
import { el, formatDateTime, formatNumber, formatTime, setText } from './dom.js';
import type { SensorStore } from './sensors.js';
import type { FieldStats, Reading, Rollup, Stats, StatsField } from './types.js';

const HISTORY_LIMIT = 200;
const TABLE_ROWS = 8;
/** Statistics are re-read at most this often while readings arrive. */
const STATS_REFRESH_MS = 5000;

export type HistoryRange = 'hour' | 'day' | 'week' | 'month';
type ChartSource = 'readings' | '1m' | '1h';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** What the chart draws for each range: at most 1,000 readings, 1,440 minutes or 720 hours. */
const RANGES: Record<HistoryRange, { ms: number; source: ChartSource; describes: string }> = {
  hour: { ms: HOUR_MS, source: 'readings', describes: 'readings of the last hour' },
  day: { ms: DAY_MS, source: '1m', describes: 'minute means of the last 24 hours' },
  week: { ms: 7 * DAY_MS, source: '1h', describes: 'hour means of the last 7 days' },
  month: { ms: 30 * DAY_MS, source: '1h', describes: 'hour means of the last 30 days' },
};
/** The newest readings the hour chart draws (a sensor writing once a second has 3,600 an hour). */
const HOUR_CHART_LIMIT = 1000;

function isRange(value: string): value is HistoryRange {
  return Object.hasOwn(RANGES, value);
}

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
  private range: HistoryRange = 'hour';
  /** What the chart draws, oldest first. */
  private chartPoints: Point[] = [];
  private chartToken = 0;

  constructor(
    store: SensorStore,
    private readonly parts: {
      title: HTMLElement;
      status: HTMLElement;
      body: HTMLElement;
      chart: HTMLElement;
      chartNote: HTMLElement;
      range: HTMLFieldSetElement;
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
        id: `${time}@${id}`, // this page's key for a reading it saw live, not the server's id
        sensorId: id,
        time,
        deviceTime: sensor.time,
        location: sensor.location,
        temperature: sensor.temperature,
        humidity: sensor.humidity,
        battery: sensor.battery,
      });
      if (this.readings.length > HISTORY_LIMIT) this.readings.length = HISTORY_LIMIT;
      // Raw readings are drawn live; a rollup range shows the periods as loaded.
      if (this.range === 'hour' && !this.chartPoints.some((point) => point.t === time)) {
        const from = Date.now() - HOUR_MS;
        this.chartPoints = [...this.chartPoints.filter((point) => point.t >= from), pointOf(this.readings[0])].slice(
          -HOUR_CHART_LIMIT,
        );
        if (this.parts.chart.dataset.points !== undefined)
          this.parts.chart.dataset.points = String(this.chartPoints.length);
      }
      this.draw();
      this.refreshStatsSoon();
    });
    parts.close.addEventListener('click', onClose);
    parts.range.addEventListener('change', (event) => {
      const value = (event.target as HTMLInputElement | null)?.value ?? '';
      if (!isRange(value) || value === this.range) return;
      this.range = value;
      void this.loadChart();
    });
  }

  async select(id: string | undefined): Promise<void> {
    const token = ++this.token;
    this.selected = id;
    this.readings = [];
    this.chartPoints = [];
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
    void this.loadChart();
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

  /** Loads what the chart draws for the selected sensor and range. */
  private async loadChart(): Promise<void> {
    const id = this.selected;
    if (id === undefined) return;
    const token = ++this.chartToken;
    const { ms, source, describes } = RANGES[this.range];
    const from = Date.now() - ms;
    const sensor = encodeURIComponent(id);
    this.parts.chart.dataset.range = this.range;
    this.parts.chart.dataset.source = source;
    this.parts.chart.removeAttribute('data-points');
    setText(this.parts.chartNote, `Loading ${describes}…`);
    try {
      let points: Point[];
      if (source === 'readings') {
        const readings = await getJson<Reading[]>(
          `/readings/?sensorId=${sensor}&time=ge=${from}&sort(-time)&limit(${HOUR_CHART_LIMIT})`,
        );
        points = readings.reverse().map(pointOf);
      } else {
        const rollups = await getJson<Rollup[]>(`/rollups/?sensorId=${sensor}&resolution=${source}&time=ge=${from}`);
        points = rollups.map((rollup) => ({
          t: rollup.time,
          temperature: rollup.temperatureMean,
          humidity: rollup.humidityMean,
        }));
      }
      if (token !== this.chartToken || id !== this.selected) return;
      this.chartPoints = points;
      // Once loaded: how many points the chart draws (read by the browser test).
      this.parts.chart.dataset.points = String(points.length);
      setText(
        this.parts.chartNote,
        points.length === 0 ? `No ${describes}.` : `Chart: ${describes} (${points.length}).`,
      );
    } catch (error) {
      if (token !== this.chartToken || id !== this.selected) return;
      this.chartPoints = [];
      this.parts.chart.dataset.points = '0';
      setText(this.parts.chartNote, `Could not load the ${describes}: ${describeError(error)}`);
    }
    this.draw();
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
    this.chart?.setPoints(this.chartPoints);
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

function pointOf(reading: Reading): Point {
  return {
    t: reading.time,
    temperature: typeof reading.temperature === 'number' ? reading.temperature : null,
    humidity: typeof reading.humidity === 'number' ? reading.humidity : null,
  };
}
