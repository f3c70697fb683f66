/**
 * The live sensor grid: one SSE stream on the whole `sensors` table (its current state first,
 * then every change), a card per sensor with a sparkline of its recent temperature and humidity.
 */
import { TimeChart, type Point } from './chart.js';
import { el, formatNumber, formatTime, frameScheduler, isoTime, prefersReducedMotion, setText } from './dom.js';
import { getJson } from './api.js';
import { isOffline, offlineLabel, presenceOf, type PresenceStore } from './presence.js';
import type { Frame, Reading, Sensor } from './types.js';

/** Points kept per sensor for its sparkline. */
const POINTS_PER_SENSOR = 120;
/** Stored readings a new card's sparkline starts with. */
const SEED_READINGS = 40;
/** Cards shown before "Show more". */
const PAGE = 12;

export interface SensorEntry {
  sensor: Sensor;
  points: Point[];
  /** put | patch | message: the last event's type (`message` is a non-retained, unstored publish). */
  lastType: string;
  /** Date.now() when the last event arrived. */
  receivedAt: number;
}

type SensorListener = (id: string, entry: SensorEntry | undefined, frame: Frame<Sensor>) => void;

/** The sensors the page knows of, fed by the table stream. */
export class SensorStore {
  readonly entries = new Map<string, SensorEntry>();
  private listeners = new Set<SensorListener>();

  subscribe(listener: SensorListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  apply(frame: Frame<Sensor>): void {
    const id = frame.id ?? frame.value?.id;
    if (typeof id !== 'string') return;
    if (frame.type === 'delete' || frame.value === null) {
      this.entries.delete(id);
      for (const listener of this.listeners) listener(id, undefined, frame);
      return;
    }
    const previous = this.entries.get(id);
    // A patch frame may carry only the changed fields.
    const sensor: Sensor = {
      ...(frame.type === 'patch' && previous ? previous.sensor : {}),
      ...frame.value,
      id,
    } as Sensor;
    const t = sensor.updatedAt ?? sensor.time ?? frame.localTime ?? Date.now();
    const points = previous?.points ?? [];
    const last = points[points.length - 1];
    const point: Point = { t, temperature: numberOrNull(sensor.temperature), humidity: numberOrNull(sensor.humidity) };
    if (!last || last.t < t) points.push(point);
    else if (last.t === t) points[points.length - 1] = point;
    if (points.length > POINTS_PER_SENSOR) points.splice(0, points.length - POINTS_PER_SENSOR);
    const entry: SensorEntry = { sensor, points, lastType: frame.type, receivedAt: Date.now() };
    this.entries.set(id, entry);
    for (const listener of this.listeners) listener(id, entry, frame);
  }

  /** Adds stored readings (older points) under the live ones, for a sparkline that starts full. */
  seed(id: string, readings: Reading[]): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    const byTime = new Map<number, Point>();
    for (const reading of readings)
      byTime.set(reading.time, {
        t: reading.time,
        temperature: numberOrNull(reading.temperature),
        humidity: numberOrNull(reading.humidity),
      });
    for (const point of entry.points) byTime.set(point.t, point);
    entry.points = [...byTime.values()].sort((a, b) => a.t - b.t).slice(-POINTS_PER_SENSOR);
    return true;
  }

  clear(): void {
    this.entries.clear();
  }
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

interface Card {
  root: HTMLLIElement;
  select: HTMLButtonElement;
  location: HTMLElement;
  temperature: HTMLElement;
  humidity: HTMLElement;
  battery: HTMLElement;
  updated: HTMLTimeElement;
  kind: HTMLElement;
  presence: HTMLElement;
  chart: TimeChart;
  renderedAt: number;
}

export class SensorGrid {
  private cards = new Map<string, Card>();
  private dirty = new Set<string>();
  private limit = PAGE;
  private filter = '';
  private selected: string | undefined;
  private readonly schedule = frameScheduler(() => this.render());

  constructor(
    private readonly store: SensorStore,
    private readonly list: HTMLUListElement,
    private readonly filterInput: HTMLInputElement,
    private readonly summary: HTMLElement,
    private readonly more: HTMLButtonElement,
    private readonly empty: HTMLElement,
    private readonly onSelect: (id: string) => void,
    private readonly presence: PresenceStore,
  ) {
    store.subscribe((id) => {
      this.dirty.add(id);
      this.schedule();
    });
    // A device's presence changes its sensor's card (the sensor named like the device).
    presence.subscribe((id) => {
      if (!this.cards.has(id)) return;
      this.dirty.add(id);
      this.schedule();
    });
    filterInput.addEventListener('input', () => {
      this.filter = filterInput.value.trim().toLowerCase();
      this.limit = PAGE;
      this.schedule();
    });
    more.addEventListener('click', () => {
      this.limit += PAGE;
      this.schedule();
    });
    this.schedule();
  }

  setSelected(id: string | undefined): void {
    this.selected = id;
    for (const [cardId, card] of this.cards) {
      card.select.setAttribute('aria-pressed', String(cardId === id));
      card.root.classList.toggle('selected', cardId === id);
    }
  }

  reset(): void {
    for (const card of this.cards.values()) card.chart.destroy();
    this.cards.clear();
    this.list.replaceChildren();
    this.filterInput.value = '';
    this.filter = '';
    this.limit = PAGE;
    this.schedule();
  }

  /** Matching sensors, the most recently updated first. */
  private visibleIds(): { ids: string[]; matching: number } {
    const matches = [...this.store.entries.entries()].filter(([id, entry]) => {
      if (!this.filter) return true;
      return id.toLowerCase().includes(this.filter) || entry.sensor.location?.toLowerCase().includes(this.filter);
    });
    const recency = (entry: SensorEntry) => entry.sensor.updatedAt ?? entry.receivedAt;
    matches.sort(([idA, a], [idB, b]) => recency(b) - recency(a) || idA.localeCompare(idB));
    return { ids: matches.slice(0, this.limit).map(([id]) => id), matching: matches.length };
  }

  private render(): void {
    const { ids, matching } = this.visibleIds();
    const wanted = new Set(ids);
    const focused = document.activeElement;
    for (const [id, card] of this.cards) {
      if (!wanted.has(id)) {
        card.chart.destroy();
        card.root.remove();
        this.cards.delete(id);
      }
    }
    let previous: Element | null = null;
    for (const id of ids) {
      const entry = this.store.entries.get(id);
      if (!entry) continue;
      let card = this.cards.get(id);
      if (!card) {
        card = this.createCard(id);
        this.cards.set(id, card);
        this.dirty.add(id);
      }
      const expectedPosition: Element | null = previous ? previous.nextElementSibling : this.list.firstElementChild;
      if (expectedPosition !== card.root) {
        if (previous) previous.after(card.root);
        else this.list.prepend(card.root);
      }
      previous = card.root;
      if (this.dirty.has(id)) this.update(card, entry);
    }
    this.dirty.clear();
    // Moving an element drops its focus: give it back.
    if (focused instanceof HTMLElement && focused !== document.activeElement && this.list.contains(focused))
      focused.focus({ preventScroll: true });
    const total = this.store.entries.size;
    setText(
      this.summary,
      this.filter
        ? `${matching} of ${total} sensors match`
        : `${total} sensor${total === 1 ? '' : 's'}, most recently updated first`,
    );
    this.more.hidden = ids.length >= matching;
    setText(this.more, `Show more (${matching - ids.length} hidden)`);
    this.empty.hidden = ids.length > 0;
    setText(
      this.empty,
      total === 0
        ? 'No sensor has reported yet. Publish a reading to sensors/<id> and it appears here.'
        : 'No sensor matches the filter.',
    );
  }

  private createCard(id: string): Card {
    const select = el(
      'button',
      { type: 'button', class: 'sensor-select', 'aria-pressed': String(id === this.selected) },
      id,
    );
    select.addEventListener('click', () => this.onSelect(id));
    const location = el('span', { class: 'sensor-location' });
    const temperature = el('span', { class: 'sensor-temperature' });
    const humidity = el('dd');
    const battery = el('dd');
    const updated = el('time');
    const kind = el('span', { class: 'sensor-kind' });
    const presence = el('p', { class: 'sensor-presence', hidden: true });
    const chartBox = el('div', { class: 'sensor-chart', 'aria-hidden': 'true' });
    const root = el(
      'li',
      { class: 'sensor-card', 'data-sensor-id': id },
      el('div', { class: 'sensor-head' }, el('h3', {}, select), location),
      el(
        'div',
        { class: 'sensor-readout' },
        temperature,
        el(
          'dl',
          { class: 'sensor-extra' },
          el('div', {}, el('dt', {}, 'Humidity'), humidity),
          el('div', {}, el('dt', {}, 'Battery'), battery),
        ),
      ),
      chartBox,
      el('p', { class: 'sensor-foot' }, 'Updated ', updated, ' ', kind),
      presence,
    );
    root.classList.toggle('selected', id === this.selected);
    // The whole card selects, for the mouse; the button is the keyboard's way in.
    root.addEventListener('click', (event) => {
      if (event.target instanceof Element && event.target.closest('button')) return;
      this.onSelect(id);
    });
    const chart = new TimeChart(chartBox, { height: 56, compact: true });
    void this.seed(id);
    return { root, select, location, temperature, humidity, battery, updated, kind, presence, chart, renderedAt: 0 };
  }

  /** A new card's sparkline starts with the sensor's recent stored readings. */
  private async seed(id: string): Promise<void> {
    try {
      const readings = await getJson<Reading[]>(
        `/readings/?sensorId=${encodeURIComponent(id)}&sort(-time)&limit(${SEED_READINGS})`,
      );
      if (this.cards.has(id) && this.store.seed(id, readings)) {
        this.dirty.add(id);
        this.schedule();
      }
    } catch {
      // the sparkline fills from the stream instead
    }
  }

  private update(card: Card, entry: SensorEntry): void {
    const { sensor } = entry;
    setText(card.location, sensor.location ?? '');
    card.temperature.replaceChildren(formatNumber(sensor.temperature), el('span', { class: 'unit' }, '°C'));
    card.temperature.setAttribute('data-value', String(sensor.temperature));
    setText(card.humidity, sensor.humidity === undefined ? '–' : `${formatNumber(sensor.humidity)} %`);
    setText(card.battery, sensor.battery === undefined ? '–' : `${formatNumber(sensor.battery, 0)} %`);
    const updatedAt = sensor.updatedAt ?? entry.receivedAt;
    setText(card.updated, formatTime(updatedAt));
    const iso = isoTime(updatedAt);
    if (iso) card.updated.dateTime = iso;
    setText(card.kind, entry.lastType === 'message' ? 'live only, not stored' : '');
    card.root.classList.toggle('ephemeral', entry.lastType === 'message');
    const device = presenceOf(this.presence, sensor.id);
    card.root.classList.toggle('offline', isOffline(device));
    setText(card.presence, offlineLabel(device));
    card.presence.hidden = !isOffline(device);
    card.chart.setPoints(entry.points);
    if (card.renderedAt !== 0 && !prefersReducedMotion()) {
      card.root.classList.remove('flash');
      void card.root.offsetWidth; // restart the animation
      card.root.classList.add('flash');
    }
    card.renderedAt = Date.now();
  }
}
