/** uPlot charts in the dashboard's dark theme, sized to their container. */
import { formatNumber } from './dom.js';

export const COLORS = {
  temperature: '#ff8a5b',
  humidity: '#4cc3ff',
  battery: '#9be37a',
  axis: '#9aa7b8',
  grid: 'rgba(154, 167, 184, 0.14)',
};

export interface Point {
  /** ms since the epoch */
  t: number;
  temperature: number | null;
  humidity: number | null;
}

export interface ChartOptions {
  height: number;
  /** A sparkline: no axes, no legend, no cursor. */
  compact?: boolean;
}

function toData(points: Point[]): UPlotData {
  return [
    points.map((point) => point.t / 1000),
    points.map((point) => point.temperature),
    points.map((point) => point.humidity),
  ];
}

/** Keeps a little room around a flat line so it is visible. */
function paddedRange(_plot: uPlot, min: number, max: number): [number, number] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  const span = max - min;
  const pad = span === 0 ? Math.max(Math.abs(max) * 0.05, 0.5) : span * 0.12;
  return [min - pad, max + pad];
}

export class TimeChart {
  private plot: uPlot;
  private observer: ResizeObserver;
  private lastWidth = 0;

  constructor(
    private readonly container: HTMLElement,
    private readonly options: ChartOptions,
  ) {
    const compact = options.compact === true;
    const axisFont = '11px system-ui, sans-serif';
    const series: UPlotSeries[] = [
      {},
      {
        label: 'Temperature °C',
        scale: 'temperature',
        stroke: COLORS.temperature,
        width: compact ? 1.5 : 2,
        fill: compact ? 'rgba(255, 138, 91, 0.10)' : undefined,
        spanGaps: true,
        points: { show: !compact, size: 4 },
        value: (_plot, raw) => (raw === null ? '–' : `${formatNumber(raw)} °C`),
      },
      {
        label: 'Humidity %',
        scale: 'humidity',
        stroke: COLORS.humidity,
        width: compact ? 1 : 1.5,
        spanGaps: true,
        points: { show: false },
        value: (_plot, raw) => (raw === null ? '–' : `${formatNumber(raw)} %`),
      },
    ];
    const axes: UPlotAxis[] = compact
      ? [{ show: false }, { show: false, scale: 'temperature' }, { show: false, scale: 'humidity' }]
      : [
          {
            stroke: COLORS.axis,
            font: axisFont,
            grid: { stroke: COLORS.grid, width: 1 },
            ticks: { stroke: COLORS.grid, width: 1 },
          },
          {
            scale: 'temperature',
            stroke: COLORS.temperature,
            font: axisFont,
            size: 48,
            grid: { stroke: COLORS.grid, width: 1 },
            ticks: { stroke: COLORS.grid, width: 1 },
          },
          {
            scale: 'humidity',
            side: 1,
            stroke: COLORS.humidity,
            font: axisFont,
            size: 40,
            grid: { show: false },
            ticks: { stroke: COLORS.grid, width: 1 },
          },
        ];
    this.plot = new uPlot(
      {
        width: this.width(),
        height: options.height,
        series,
        axes,
        scales: {
          x: { time: true },
          temperature: { auto: true, range: paddedRange },
          humidity: { auto: true, range: paddedRange },
        },
        legend: { show: !compact, live: true },
        cursor: compact ? { show: false } : { drag: { x: false, y: false } },
        padding: compact ? [4, 0, 2, 0] : [12, 8, 0, 0],
      },
      toData([]),
      container,
    );
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(container);
  }

  private width(): number {
    return Math.max(120, Math.floor(this.container.clientWidth));
  }

  private resize(): void {
    const width = this.width();
    if (width === this.lastWidth) return;
    this.lastWidth = width;
    this.plot.setSize({ width, height: this.options.height });
  }

  setPoints(points: Point[]): void {
    this.plot.setData(toData(points));
  }

  destroy(): void {
    this.observer.disconnect();
    this.plot.destroy();
  }
}
