/**
 * The records the backbone stores and serves, and the refusal body it answers with, typed once for
 * lib/, the dashboard (web/src/) and the benchmark (bench/). They describe the tables of
 * schema.graphql as clients receive them. Types, limits and field lists only, and no imports:
 * `npm run build` compiles this file into the server (dist/shared/) and into the browser build
 * (web/dist/shared/).
 */

/** The longest record id (sensor, sign, rule, device) the server takes, in characters. */
export const MAX_ID_LENGTH = 128;

/** The longest message a sign shows, in characters (code points). */
export const MAX_MESSAGE = 64;

/** The measured fields of a reading: what rules watch and rollups and statistics summarise. */
export const MEASURES = ['temperature', 'humidity', 'battery'] as const;
export type Measure = (typeof MEASURES)[number];

/** A sensor's latest state (sensors/<id>), as stored and as delivered to subscribers. */
export interface SensorRecord {
  id: string;
  location: string;
  temperature: number;
  humidity?: number;
  battery?: number;
  /** Device time in milliseconds since the epoch, when the device sent one. */
  time?: number;
  /** Server time in milliseconds since the epoch, stamped on every accepted write. */
  updatedAt: number;
}

/** One stored reading (readings/<id>): a sensor's state as one accepted write stored it. */
export interface ReadingRecord {
  /** <time, fixed-width>@<sensorId>@<writer>: the writer names the node, thread and process. */
  id: string;
  sensorId: string;
  /** Server time of the write (the sensor's updatedAt). */
  time: number;
  deviceTime?: number;
  location: string;
  temperature: number;
  humidity?: number;
  battery?: number;
}

export type AlertState = 'firing' | 'resolved';

/** An alert (alerts/<rule id>@<sensor id>): the latest state of one rule for one sensor. */
export interface AlertRecord {
  id: string;
  ruleId: string;
  sensorId: string;
  state: AlertState;
  field: Measure;
  value: number;
  time: number;
}

export type Resolution = '1m' | '1h';

/** The columns of one measure: its count, and min, max, mean and last (null when count is 0). */
export type RollupColumn = `${Measure}${'Count' | 'Min' | 'Max' | 'Mean' | 'Last'}`;

/**
 * What /rollups/ answers: one record per sensor, resolution and period, merged over all writers.
 * Flat columns (temperatureMean, ...) rather than nested objects, so that CSV and select() take
 * them as they are.
 */
export type Rollup = {
  /** <sensorId>@<resolution>@<period start> */
  id: string;
  sensorId: string;
  resolution: Resolution;
  /** Start of the period, ms since the epoch. */
  time: number;
} & Record<RollupColumn, number | null>;

/** One measure over a window of /stats/<sensor id> (min, max and mean are null when count is 0). */
export interface WindowStats {
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
}

/** What /stats/<sensor id> answers: the last hour and the last day. */
export interface SensorStats {
  sensorId: string;
  lastUpdate: number | null;
  hour: Record<Measure, WindowStats>;
  day: Record<Measure, WindowStats>;
}

export const SIGN_FIELDS = ['message', 'brightness', 'power', 'color'] as const;
export type SignField = (typeof SIGN_FIELDS)[number];
export type Power = 'on' | 'off';

export interface SignState {
  message: string;
  brightness: number;
  power: Power;
  color: string;
}

/**
 * A sign as stored and delivered (signs/<id>): a device twin. The top-level state fields are what
 * operators asked for (desired; absent until one of them sets the sign), `reported` is what the
 * sign's device last said it shows, and `pending` the difference between the two.
 */
export interface SignRecord extends Partial<SignState> {
  id: string;
  /** When desired last changed, and the operator (or admin) who changed it. */
  updatedAt?: number;
  updatedBy?: string;
  /** What the device reported it shows (each field as last reported). */
  reported?: Partial<SignState>;
  /** When the device last reported a change, and the device user that reported it. */
  reportedAt?: number;
  reportedBy?: string;
  /** The desired fields the device has not reported showing yet, in SIGN_FIELDS order. */
  pending: SignField[];
  /** When the device first reported showing the latest desired state in full (null while pending). */
  shownAt: number | null;
}

export type PresenceVia = 'mqtt' | 'mqtt-ws' | 'ws';

/** A device's presence (presence/<device username>), the record every protocol reads. */
export interface PresenceRecord {
  /** The device's username. */
  id: string;
  state: 'online' | 'offline';
  /** When `state` last changed, ms since the epoch. */
  since: number;
  /**
   * When the device was last known to be there: while online, when its latest connection opened;
   * once offline, when its last connection ended, or, when that connection's keepalive expired,
   * when its last packet arrived.
   */
  lastSeen: number;
  /** How the device's latest connection came in. */
  via: PresenceVia;
}

/** Every refusal code; lib/rules/errors.ts says when each is sent. */
export type RefusalCode =
  | 'malformed_json' // the body or payload is not parseable JSON
  | 'not_an_object' // the payload parsed but is not a JSON object
  | 'unknown_field' // a property the table does not define
  | 'missing_field' // a required property is absent
  | 'invalid_field' // a property is present but breaks its rule
  | 'invalid_id' // the id from the topic/path is not an acceptable sensor id
  | 'id_mismatch' // the body names an id other than the topic/path
  | 'write_failed' // the server failed to store an accepted message (not the client's fault)
  | 'forbidden' // authenticated, but this user may not do this to this record
  | 'payload_too_large' // a record over the size limit (lib/rules/limits.ts)
  | 'too_deep' // a payload nested deeper than the limit
  | 'unsupported_content_type' // a REST body that is not JSON, CBOR, MessagePack or text
  | 'invalid_query' // a malformed replay parameter (startTime, previousCount)
  | 'not_stored' // a non-retained publish to a resource that only takes stored writes
  | 'method_not_allowed' // a write door (REST method, MQTT publish, WebSocket message) the table has no rules for
  | 'query_too_broad' // a query or replay that would read more than a request may (lib/harper/sort-condition-workaround.ts, lib/streams/replay.ts)
  | 'slow_consumer' // a subscriber that fell too far behind was cut off (lib/streams/slow-consumers.ts)
  | 'server_shutting_down'; // the last event of every subscription when Harper stops or restarts

/** A refusal, the same body on every protocol. */
export interface RefusalBody {
  error: RefusalCode;
  message: string;
  field?: string;
  rule?: string;
  allowed?: readonly string[];
}
