/**
 * The resources this component exports. Each export name is a URL path, an MQTT topic namespace
 * and a WebSocket/SSE endpoint at once (`sensors` -> /sensors/<id>, topic sensors/<id>).
 * The tables themselves are declared in schema.graphql.
 */
import './lib/mqtt-events.js';
import './lib/wire-limits.js';
import './lib/mqtt-deliveries.js';
import './lib/http-guard.js';
import './lib/csv-export.js';
import './lib/sse-resume.js';
import './lib/metrics-probes.js';
import { tables } from 'harperdb';
import { separateIndexKeyWriter, type IndexedTable } from './lib/index-key-writer.js';
// Before any write: the index stores' key encoding on a path of its own (lib/index-key-writer.ts).
separateIndexKeyWriter(Object.values(tables) as IndexedTable[]);

export { Sensors as sensors } from './lib/sensors.js';
export { Readings as readings } from './lib/history.js';
export { Rules as rules, Alerts as alerts } from './lib/alerts.js';
export { Stats as stats } from './lib/stats.js';
export { Rollups as rollups } from './lib/rollups.js';
export { Presence as presence } from './lib/presence.js';
export { ServerNotice as 'server-notice' } from './lib/shutdown.js';
export { Metrics as metrics } from './lib/metrics-endpoint.js';
export { Signs as signs, LedSign as 'led-sign' } from './lib/signs.js';
export { Login as login, Logout as logout } from './lib/session.js';
// The empty export name is the catch-all: every path and topic no other resource owns.
export { Topics as '' } from './lib/topics.js';
