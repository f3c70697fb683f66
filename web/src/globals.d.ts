/*
 * The two browser libraries the page loads with plain <script> tags from /vendor/ (copied from
 * node_modules by `npm run build:web`): uPlot (global `uPlot`) and mqtt.js (global `mqtt`).
 * Only what this dashboard uses is declared here.
 */

/** x values (seconds since the epoch) first, then one array per series; null is a gap. */
type UPlotData = [number[], ...(number | null)[][]];

interface UPlotSeries {
  label?: string;
  scale?: string;
  stroke?: string;
  fill?: string;
  width?: number;
  spanGaps?: boolean;
  show?: boolean;
  points?: { show?: boolean; size?: number };
  value?: (plot: uPlot, raw: number | null) => string;
}

interface UPlotAxis {
  scale?: string;
  side?: 0 | 1 | 2 | 3;
  show?: boolean;
  stroke?: string;
  size?: number;
  gap?: number;
  font?: string;
  label?: string;
  labelFont?: string;
  labelSize?: number;
  space?: number;
  grid?: { show?: boolean; stroke?: string; width?: number };
  ticks?: { show?: boolean; stroke?: string; width?: number; size?: number };
  values?: (plot: uPlot, splits: number[]) => string[];
}

interface UPlotScale {
  time?: boolean;
  auto?: boolean;
  range?: (plot: uPlot, min: number, max: number) => [number, number];
}

interface UPlotOptions {
  width: number;
  height: number;
  title?: string;
  series: UPlotSeries[];
  axes?: UPlotAxis[];
  scales?: Record<string, UPlotScale>;
  legend?: { show?: boolean; live?: boolean };
  cursor?: { show?: boolean; drag?: { x?: boolean; y?: boolean }; points?: { show?: boolean } };
  padding?: [number, number, number, number];
}

declare class uPlot {
  constructor(options: UPlotOptions, data: UPlotData, target: HTMLElement);
  readonly root: HTMLElement;
  setData(data: UPlotData, resetScales?: boolean): void;
  setSize(size: { width: number; height: number }): void;
  destroy(): void;
}

interface MqttConnectOptions {
  protocolVersion?: 4 | 5;
  clientId?: string;
  username?: string;
  password?: string;
  clean?: boolean;
  /** 0: no automatic reconnect (transport/reconnect.ts decides when). */
  reconnectPeriod?: number;
  connectTimeout?: number;
  keepalive?: number;
}

interface MqttConnack {
  /** MQTT 5 reason code; 0 is success. */
  reasonCode?: number;
  returnCode?: number;
}

interface MqttGrant {
  topic: string;
  qos: number;
}

/** mqtt.js errors carry the CONNACK reason code when the broker refused the connection. */
interface MqttError extends Error {
  code?: number | string;
}

interface MqttClient {
  readonly connected: boolean;
  on(event: 'connect', listener: (connack: MqttConnack) => void): MqttClient;
  on(event: 'message', listener: (topic: string, payload: Uint8Array) => void): MqttClient;
  on(event: 'error', listener: (error: MqttError) => void): MqttClient;
  on(event: 'close' | 'offline' | 'end', listener: () => void): MqttClient;
  subscribe(
    topic: string,
    options: { qos: 0 | 1 | 2 },
    callback: (error: Error | null, granted?: MqttGrant[]) => void,
  ): MqttClient;
  end(force?: boolean): MqttClient;
}

declare const mqtt: {
  connect(url: string, options: MqttConnectOptions): MqttClient;
};
