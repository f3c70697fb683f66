/**
 * The records and frames the dashboard reads. The records are the server's own types
 * (shared/records.ts), under the names the panels use; the frame and session shapes are the
 * dashboard's view of Harper's events and of /login.
 */
import type {
  AlertRecord,
  Measure,
  ReadingRecord,
  RefusalBody,
  SensorRecord,
  SignRecord,
  WindowStats,
} from './shared/records.js';

export type { Power, PresenceRecord, SignField, SignState } from './shared/records.js';

export type Sensor = SensorRecord;
export type Reading = ReadingRecord;
export type Alert = AlertRecord;
export type Sign = SignRecord;
export type StatsField = Measure;
export type FieldStats = WindowStats;
/** One period of GET /rollups/ (lib/resources/rollups.ts); the chart draws its means. */
export type { Rollup } from './shared/records.js';

/** What /stats/<sensor id> answers, as the dashboard reads it: a window may lack a field. */
export interface Stats {
  hour: Partial<Record<StatsField, FieldStats>>;
  day: Partial<Record<StatsField, FieldStats>>;
  lastUpdate?: number;
}

/** A refusal, the same on every protocol (lib/rules/errors.ts on the server). */
export type ApiError = RefusalBody;

/** One SSE or WebSocket event: the same JSON on both. */
export interface Frame<T> {
  id: string;
  type: 'put' | 'patch' | 'delete' | 'message' | string;
  value: T | null;
  /** Harper's event time: the resume point for ?startTime= (exclusive). */
  localTime?: number;
  version?: number;
}

export interface Session {
  username: string;
  role: string;
}
