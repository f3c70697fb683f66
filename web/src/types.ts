/** The records and frames the backbone serves (see the README's data model). */

export interface Sensor {
  id: string;
  location: string;
  temperature: number;
  humidity?: number;
  battery?: number;
  /** The device's own time, ms. */
  time?: number;
  /** Server time of the accepted write, ms. */
  updatedAt?: number;
}

export interface Reading {
  id: string;
  sensorId: string;
  time: number;
  deviceTime?: number;
  location: string;
  temperature: number;
  humidity?: number;
  battery?: number;
}

/** One period of GET /rollups/ (lib/resources/rollups.ts), the columns the chart draws. */
export interface Rollup {
  time: number;
  temperatureMean: number | null;
  humidityMean: number | null;
}

export interface FieldStats {
  count: number;
  min: number;
  max: number;
  mean: number;
}

export type StatsField = 'temperature' | 'humidity' | 'battery';

export interface Stats {
  hour: Partial<Record<StatsField, FieldStats>>;
  day: Partial<Record<StatsField, FieldStats>>;
  lastUpdate?: number;
}

export interface Alert {
  id: string;
  ruleId: string;
  sensorId: string;
  state: 'firing' | 'resolved';
  field: string;
  value: number;
  time: number;
}

export type Power = 'on' | 'off';

export type SignField = 'message' | 'brightness' | 'power' | 'color';

export interface SignState {
  message: string;
  brightness: number;
  power: Power;
  color: string;
}

/**
 * A sign's twin: desired at the top level (absent until an operator sets it), what the device
 * reported, the fields still pending, and when the latest desired state was first shown.
 */
export interface Sign extends Partial<SignState> {
  id: string;
  updatedAt?: number;
  updatedBy?: string;
  reported?: Partial<SignState>;
  reportedAt?: number;
  reportedBy?: string;
  pending?: SignField[];
  shownAt?: number | null;
}

/** A device's presence (presence/<device username>). */
export interface PresenceRecord {
  id: string;
  state: 'online' | 'offline';
  since: number;
  lastSeen: number;
  via: 'mqtt' | 'mqtt-ws' | 'ws';
}

/** One SSE or WebSocket event: the same JSON on both. */
export interface Frame<T> {
  id: string;
  type: 'put' | 'patch' | 'delete' | 'message' | string;
  value: T | null;
  /** Harper's event time: the resume point for ?startTime= (exclusive). */
  localTime?: number;
  version?: number;
}

/** A refusal, the same on every protocol (lib/rules/errors.ts on the server). */
export interface ApiError {
  error: string;
  field?: string;
  rule?: string;
  message: string;
}

export interface Session {
  username: string;
  role: string;
}
