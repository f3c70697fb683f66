/**
 * Device presence: `presence/<device user>` says whether a device is connected, since when, when
 * it was last heard from and how it connected. Written by the server only, from the connections
 * of device users (MQTT over TCP, MQTT over WebSocket, plain WebSocket), as an ordinary record:
 * readable and subscribable on every protocol, replayed, replicated.
 *
 * The truth behind it is one `presenceConnections` record per open connection (not exported),
 * named after the writer (node, thread, process tag) that holds it. A connection that opens
 * writes its record and marks the device online; one that ends deletes its record and marks the
 * device offline only when no record of the device is left, on any thread or node (the records
 * replicate). So a device connected twice stays online until its last connection ends, wherever
 * the connections are.
 *
 * Two threads may decide at the same moment: one ends the last connection it can see while the
 * other opens a new one. The ending side therefore looks again after writing `offline`, and writes
 * `online` back if a connection appeared meanwhile; within a node every commit is ordered, so one
 * of the two always sees the other's connection record.
 *
 * Across nodes no such order exists: a node decides from the connection records it has received
 * so far, and Harper keeps the presence write with the latest timestamp, whatever view it came
 * from. A node that decided `online` because another node's delete had not yet arrived would win
 * over that node's earlier, correct `offline`, and stay wrong everywhere. So one thread per node
 * follows the connection records that replication brings in from other nodes and decides again
 * for their device each time one arrives. The last decision on every node is then taken with
 * every connection record in view, and a node whose latest write was wrong corrects it with a
 * newer one: presence converges to what the connection records say. A node writes a connection
 * record and the presence it leads to in one transaction, which replicates as one: the other
 * node's second look then finds its presence already right and writes nothing, so a device seen
 * going offline is seen so once.
 *
 * A node that stops without ending its connections (SIGKILL, power loss) leaves their records
 * behind; when it starts again, its first worker thread deletes the records of the node's
 * previous process and marks the devices that have no other connection offline. A node that
 * never comes back leaves its devices online on the other nodes.
 *
 * Per connection event, never per message: the write path is untouched.
 */
import { logger, server, tables } from 'harperdb';
import { workerData } from 'node:worker_threads';
import { roleOf } from '../access/policy.js';
import { nodeName, writer } from '../write-path/writer-identity.js';
import { guardedTable } from '../access/guarded-table.js';
import { transaction, type HarperContext, type InstanceBoundTableClass, type User } from '../harper/types.js';
import { MAX_ID_LENGTH, type PresenceRecord, type PresenceVia } from '../../shared/records.js';

export type { PresenceRecord, PresenceVia };

interface ConnectionRecord {
  /** <writer>/<sequence>: unique per connection. */
  id: string;
  device: string;
  node: string;
  /** The Harper process that holds the connection: `<pid>@<process start, ms>`. */
  process: string;
  via: PresenceVia;
  since: number;
}

interface Table<Row> {
  get(id: string, context?: unknown): Promise<Row | undefined>;
  put(record: Row, context?: unknown): Promise<unknown>;
  delete(id: string, context?: unknown): Promise<unknown>;
  search(query: { conditions: { attribute: string; value: unknown }[] }, context?: unknown): AsyncIterable<Row>;
}

const PresenceTable = tables.presence as unknown as Table<PresenceRecord>;
const ConnectionsTable = tables.presenceConnections as unknown as Table<ConnectionRecord>;

const thisNode = () => nodeName() ?? 'local';

/** Process start time: the same in every worker thread of a process (process.uptime is process-wide). */
const PROCESS_START = Date.now() - process.uptime() * 1000;
const THIS_PROCESS = `${process.pid}@${Math.round(PROCESS_START)}`;

function isThisProcess(tag: string): boolean {
  const [pid, start] = tag.split('@');
  return Number(pid) === process.pid && Math.abs(Number(start) - PROCESS_START) < 1_000;
}

/** A plain copy: Harper's records expose their fields through getters. */
function plainPresence(record: PresenceRecord): PresenceRecord {
  return { id: record.id, state: record.state, since: record.since, lastSeen: record.lastSeen, via: record.via };
}

/** A plain copy of a connection record, for the same reason. */
function plainConnection(record: ConnectionRecord): ConnectionRecord {
  const { id, device, node, via, since } = record;
  return { id, device, node, process: record.process, via, since };
}

async function connectionsOf(device: string, context?: HarperContext): Promise<ConnectionRecord[]> {
  const found: ConnectionRecord[] = [];
  for await (const record of ConnectionsTable.search(
    { conditions: [{ attribute: 'device', value: device }] },
    context,
  )) {
    found.push(plainConnection(record));
  }
  return found;
}

/** `opened`: the record of the connection that made the device online, committed with it. */
async function markOnline(
  device: string,
  via: PresenceVia,
  connectedAt: number,
  opened?: ConnectionRecord,
): Promise<void> {
  const context: HarperContext = {};
  await transaction(context, async () => {
    if (opened) await ConnectionsTable.put(opened, context);
    const current = await PresenceTable.get(device, context);
    const since = current?.state === 'online' ? current.since : connectedAt;
    await PresenceTable.put({ id: device, state: 'online', since, lastSeen: connectedAt, via }, context);
  });
}

/**
 * After a connection of `device` ended (at `endedAt`): offline when none is left anywhere, else
 * online through the newest one that is left. `lastSeen` is when the ended connection was last
 * heard from. `ended`: the id of that connection's record, deleted in the same transaction as the
 * `offline` it leads to, so that other nodes receive both at once (see the module note).
 */
async function settle(
  device: string,
  endedAt: number,
  lastSeen: number,
  endedVia: PresenceVia | undefined,
  ended?: string,
): Promise<void> {
  let left: ConnectionRecord[] = [];
  const context: HarperContext = {};
  await transaction(context, async () => {
    if (ended !== undefined) await ConnectionsTable.delete(ended, context);
    left = (await connectionsOf(device, context)).filter((record) => record.id !== ended);
    if (left.length > 0) return;
    const current = await PresenceTable.get(device, context);
    const base = current ? plainPresence(current) : undefined;
    if (base?.state !== 'offline') {
      await PresenceTable.put(
        { id: device, state: 'offline', since: endedAt, lastSeen, via: endedVia ?? base?.via ?? 'mqtt' },
        context,
      );
    }
  });
  if (left.length === 0) {
    // A connection that opened while this one ended, and did not see it end: see the module note.
    left = await connectionsOf(device);
    if (left.length === 0) return;
  }
  const newest = left.reduce((a, b) => (b.since > a.since ? b : a));
  const current = await PresenceTable.get(device);
  if (current?.state !== 'online' || current.via !== newest.via) await markOnline(device, newest.via, newest.since);
}

/**
 * Presence changes of one device on this thread run one after another, so an open and a close
 * that follow each other quickly are applied in that order.
 */
const queues = new Map<string, Promise<void>>();
function serially(device: string, work: () => Promise<void>): void {
  const run = (queues.get(device) ?? Promise.resolve())
    .then(work)
    .catch((error: unknown) => logger.error?.(`presence of "${device}": ${String(error)}`));
  queues.set(device, run);
  void run.then(() => {
    if (queues.get(device) === run) queues.delete(device);
  });
}

let sequence = 0;

/**
 * A device user's connection opened; returns the function to call when it ends, with when the
 * device was last heard from on it (default: now).
 */
export function connectionOpened(device: string, via: PresenceVia): (lastSeen?: number) => void {
  const since = Date.now();
  const record: ConnectionRecord = {
    id: `${writer()}/${++sequence}`,
    device,
    node: thisNode(),
    process: THIS_PROCESS,
    via,
    since,
  };
  serially(device, () => markOnline(device, via, since, record));
  let ended = false;
  return (lastSeen?: number) => {
    if (ended) return;
    ended = true;
    const endedAt = Date.now();
    serially(device, () => settle(device, endedAt, lastSeen ?? endedAt, via, record.id));
  };
}

/** Whether this user's connections count for presence: device users only. */
export function isDevice(user: User | undefined): user is User {
  return roleOf(user) === 'device';
}

// --- MQTT (TCP and WebSocket): Harper's connection events -----------------------------------------

interface MqttSession {
  user?: User;
  request?: unknown;
  keepalive?: number;
}
interface EventSource {
  on(event: 'connected' | 'disconnected', listener: (session: MqttSession | undefined, socket: unknown) => void): void;
}
interface SocketEvents {
  once?(event: 'error', listener: (error: unknown) => void): unknown;
}

const mqttEvents = (server as unknown as { mqtt?: { events?: EventSource } }).mqtt?.events;

/** Per open MQTT connection of a device: how to end it, and whether its keepalive expired. */
const openSessions = new WeakMap<object, { end: (lastSeen?: number) => void; keepaliveExpired: boolean }>();

mqttEvents?.on('connected', (session, socket) => {
  if (!session || !isDevice(session.user)) return;
  // Harper hands MQTT over WebSocket its upgrade request; a TCP connection has none.
  const entry = {
    end: connectionOpened(session.user.username, session.request ? 'mqtt-ws' : 'mqtt'),
    keepaliveExpired: false,
  };
  openSessions.set(session, entry);
  // Harper ends a connection whose keepalive expired with this error (1.5 keepalives after its
  // last packet, as MQTT asks): the device was last heard from then.
  (socket as SocketEvents | undefined)?.once?.('error', (error) => {
    if ((error as Error | undefined)?.message === 'Keepalive timeout') entry.keepaliveExpired = true;
  });
});

mqttEvents?.on('disconnected', (session) => {
  const entry = session && openSessions.get(session);
  if (!entry) return;
  openSessions.delete(session);
  const keepalive = session.keepalive ?? 0;
  entry.end(entry.keepaliveExpired && keepalive > 0 ? Date.now() - keepalive * 1500 : undefined);
});

// --- Plain WebSocket connections (lib/access/guarded-table.ts calls this) --------------------------------

interface ClosingQueue {
  once?(event: 'close', listener: () => void): unknown;
}

/** A WebSocket of a signed-in user opened on one of our resources (`incoming`: its message queue). */
export function webSocketOpened(user: User | undefined, incoming: unknown): void {
  if (!isDevice(user)) return;
  const queue = incoming as ClosingQueue;
  if (typeof queue?.once !== 'function') return;
  const end = connectionOpened(user.username, 'ws');
  queue.once('close', () => end());
}

// --- Connection records of other nodes, as replication brings them in -----------------------------

interface ConnectionChange {
  type?: string;
  id?: unknown;
  value?: Partial<ConnectionRecord> | null;
}
interface ConnectionsSource {
  subscribe(request: { omitCurrent: boolean }): Promise<AsyncIterable<ConnectionChange>>;
}

/**
 * Whose connection each record id is: a delete carries only the id, so the device and node are
 * remembered from the record's put (or from the table, for records older than the subscription).
 */
const known = new Map<string, { device: string; node: string }>();

/** Decides again for a device whose connection on another node opened or ended. */
function remoteChange(id: string, record: Partial<ConnectionRecord> | null | undefined, deleted: boolean): void {
  const owner =
    record?.device !== undefined && record.node !== undefined
      ? { device: record.device, node: record.node }
      : known.get(id);
  if (deleted) known.delete(id);
  else if (owner) known.set(id, owner);
  if (!owner || owner.node === thisNode()) return; // this node's own changes are settled where they happen
  serially(owner.device, async () => {
    // Reached only when this node's view lagged: the node that held the connection wrote the
    // precise times; here the device was last known to be there when its record went away.
    const now = Date.now();
    await settle(owner.device, now, now, record?.via);
  });
}

async function followOtherNodes(): Promise<void> {
  const changes = await (ConnectionsTable as unknown as ConnectionsSource).subscribe({ omitCurrent: true });
  // Subscribed first, then read: a record written in between is seen at least once.
  for await (const record of ConnectionsTable.search({ conditions: [] })) {
    if (!known.has(record.id)) known.set(record.id, { device: record.device, node: record.node });
  }
  for await (const change of changes) {
    if (typeof change.id !== 'string') continue;
    remoteChange(change.id, change.value, change.type === 'delete' || change.value === null);
  }
}

// --- At start: connections of this node's previous process -------------------------------------

async function forgetPreviousProcess(): Promise<void> {
  const node = thisNode();
  const stale: ConnectionRecord[] = [];
  for await (const record of ConnectionsTable.search({ conditions: [{ attribute: 'node', value: node }] })) {
    if (!isThisProcess(record.process)) stale.push(plainConnection(record));
  }
  if (stale.length === 0) return;
  const context: HarperContext = {};
  await transaction(context, async () => {
    for (const record of stale) await ConnectionsTable.delete(record.id, context);
  });
  const devices = new Set(stale.map((record) => record.device));
  for (const device of devices) {
    serially(device, async () => {
      // What the device was last known to do: its presence record says when it last changed.
      const current = await PresenceTable.get(device);
      const now = Date.now();
      await settle(device, now, current?.lastSeen ?? now, undefined);
    });
  }
  logger.notify?.(
    `presence: ${stale.length} connection(s) of a previous process of this node ended; ${devices.size} device(s) looked at again`,
  );
}

// One thread per node does both: the first worker (Harper's workerData.workerIndex).
if ((workerData as { workerIndex?: number } | null)?.workerIndex === 0) {
  setImmediate(() => {
    void forgetPreviousProcess().catch((error: unknown) =>
      logger.error?.(`presence: clearing connections of a previous process failed: ${String(error)}`),
    );
    void followOtherNodes().catch((error: unknown) =>
      logger.error?.(
        `presence: following other nodes' connections failed; presence may disagree between nodes: ${String(error)}`,
      ),
    );
  });
}

/**
 * presence/<device>: read and subscribed on every protocol (REST, SSE, WebSocket, MQTT
 * `presence/#`); it has no write door, so every client write is refused (405) and only the code
 * above writes it.
 */
export class Presence extends guardedTable(tables.presence as unknown as InstanceBoundTableClass<PresenceRecord>, {
  resource: 'presence',
  maxIdLength: MAX_ID_LENGTH,
}) {}
