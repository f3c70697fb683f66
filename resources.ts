/**
 * The resources this component exports. Each export name is a URL path, an MQTT topic namespace
 * and a WebSocket/SSE endpoint at once (`sensors` -> /sensors/<id>, topic sensors/<id>).
 * The tables themselves are declared in schema.graphql.
 */
import './lib/mqtt/connections.js';
import './lib/mqtt/wire-limits.js';
import './lib/mqtt/deliveries.js';
import './lib/access/http-guard.js';
import './lib/harper/csv-formula-guard.js';
import './lib/streams/sse-resume.js';
import './lib/metrics/probes.js';
import { server } from 'harperdb';
import { keepKeyEncodingPolymorphic } from './lib/harper/key-encoding.js';
import { setHeapGrowth } from './lib/harper/heap-growth.js';
import { rememberThisNodeId } from './lib/harper/node-id-cache.js';
// Before any write: key encoding kept off V8's slow generic path (lib/harper/key-encoding.ts).
keepKeyEncodingPolymorphic();
// Full collections rarer under a steady write load (lib/harper/heap-growth.ts).
setHeapGrowth();
// This node's id answered from memory, not read per committed record (lib/harper/node-id-cache.ts).
rememberThisNodeId(server);

export { Sensors as sensors } from './lib/resources/sensors.js';
export { Readings as readings } from './lib/resources/readings.js';
export { Rules as rules, Alerts as alerts } from './lib/resources/alerts.js';
export { Stats as stats } from './lib/resources/stats.js';
export { Rollups as rollups } from './lib/resources/rollups.js';
export { Presence as presence } from './lib/resources/presence.js';
export { ServerNotice as 'server-notice' } from './lib/resources/server-notice.js';
export { Metrics as metrics } from './lib/resources/metrics.js';
export { Signs as signs, LedSign as 'led-sign' } from './lib/resources/signs.js';
export { Login as login, Logout as logout } from './lib/resources/session.js';
// The empty export name is the catch-all: every path and topic no other resource owns.
export { Topics as '' } from './lib/resources/topics.js';
