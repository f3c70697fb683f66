/**
 * A cluster of Harper nodes on one host, each running this component, joined by Harper's own
 * replication: where each node lives, its ports and replication hostname, starting one, joining
 * them, and the node list file that `npm run cluster` writes and `npm run users -- --cluster`
 * reads. Used by scripts/cluster.ts and by the tests.
 *
 * Harper facts this relies on (harperdb 4.7.29):
 * - each node needs its own HOME, ROOTPATH and ports (startHarper gives it that) and its own
 *   replication hostname; on one host distinct loopback addresses work (127.0.0.1, 127.0.0.2),
 *   since Harper's listeners bind every address;
 * - one `add_node` on the first node per other node is the whole join: the peers exchange
 *   certificates (signed by each node's own CA) and the join is kept in the `hdb_nodes` table, so
 *   it survives restarts. Routes in the config alone fail: a node has no CA for its peer's
 *   self-signed certificate;
 * - `verify_tls: false` is needed for that first contact with self-signed certificates. It is
 *   fine on loopback; between machines, give every node a certificate whose name is its
 *   hostname and keep verify_tls on (README, "Running N nodes for real").
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarper, type AdminCredentials, type HarperInstance, type HarperPorts } from './harper-process.js';
import { OperationsClient, OperationsError } from './operations-client.js';

export interface ClusterNodeSpec {
  /** a, b, c, ...: also the name of its data folder. */
  name: string;
  /** Replication hostname: how the other nodes reach (and name) this one. */
  hostname: string;
  ports: HarperPorts;
  /** Harper's replication listener (TLS, WebSocket). */
  replicationPort: number;
  /** Holds the node's root and HOME. */
  dataDir: string;
}

/** What the node list file holds: addresses only, never credentials. */
export interface ClusterNodeAddress {
  name: string;
  hostname: string;
  httpUrl: string;
  mqttUrl: string;
  operationsUrl: string;
  replicationUrl: string;
}

/** Default layout: node A on Harper's usual ports, node B ten above, and so on. */
export const CLUSTER_DEFAULTS = {
  hosts: ['127.0.0.1', '127.0.0.2'],
  http: 9926,
  mqtt: 1883,
  operations: 9925,
  replication: 9933,
  step: 10,
};

function numbers(value: string | undefined, variable: string, count: number, base: number): number[] {
  if (!value) return Array.from({ length: count }, (_, i) => base + CLUSTER_DEFAULTS.step * i);
  const list = value.split(',').map((item) => Number(item.trim()));
  if (list.length !== count || list.some((port) => !Number.isInteger(port) || port <= 0 || port > 65535)) {
    throw new Error(`${variable} must list ${count} port numbers, one per host in CLUSTER_HOSTS (got "${value}")`);
  }
  return list;
}

/**
 * The nodes, from the environment: CLUSTER_HOSTS (replication hostnames, one per node) and, per
 * node in the same order, CLUSTER_HTTP_PORTS, CLUSTER_MQTT_PORTS, CLUSTER_OPERATIONS_PORTS and
 * CLUSTER_REPLICATION_PORTS (comma-separated). Each node's data lives in <dataDir>/<name>.
 */
export function clusterLayout(dataDir: string, env: NodeJS.ProcessEnv = process.env): ClusterNodeSpec[] {
  const hosts = env.CLUSTER_HOSTS
    ? env.CLUSTER_HOSTS.split(',')
        .map((host) => host.trim())
        .filter(Boolean)
    : CLUSTER_DEFAULTS.hosts;
  if (hosts.length < 1 || hosts.length > 26) throw new Error('CLUSTER_HOSTS must name 1 to 26 hosts');
  const http = numbers(env.CLUSTER_HTTP_PORTS, 'CLUSTER_HTTP_PORTS', hosts.length, CLUSTER_DEFAULTS.http);
  const mqtt = numbers(env.CLUSTER_MQTT_PORTS, 'CLUSTER_MQTT_PORTS', hosts.length, CLUSTER_DEFAULTS.mqtt);
  const operations = numbers(
    env.CLUSTER_OPERATIONS_PORTS,
    'CLUSTER_OPERATIONS_PORTS',
    hosts.length,
    CLUSTER_DEFAULTS.operations,
  );
  const replication = numbers(
    env.CLUSTER_REPLICATION_PORTS,
    'CLUSTER_REPLICATION_PORTS',
    hosts.length,
    CLUSTER_DEFAULTS.replication,
  );
  return hosts.map((hostname, i) => {
    const name = String.fromCharCode(97 + i);
    return {
      name,
      hostname,
      ports: { http: http[i], mqtt: mqtt[i], operations: operations[i] },
      replicationPort: replication[i],
      dataDir: join(dataDir, name),
    };
  });
}

export function addressOf(node: ClusterNodeSpec): ClusterNodeAddress {
  return {
    name: node.name,
    hostname: node.hostname,
    httpUrl: `http://${node.hostname}:${node.ports.http}`,
    mqttUrl: `mqtt://${node.hostname}:${node.ports.mqtt}`,
    operationsUrl: `http://${node.hostname}:${node.ports.operations}`,
    replicationUrl: `wss://${node.hostname}:${node.replicationPort}`,
  };
}

/** Starts one node with this component (its replication listener and hostname included). */
export function startClusterNode(
  node: ClusterNodeSpec,
  admin: AdminCredentials,
  options: { onLine?: (line: string) => void; env?: Record<string, string> } = {},
): Promise<HarperInstance> {
  return startHarper({
    dataDir: node.dataDir,
    ports: node.ports,
    admin,
    env: {
      ...options.env,
      REPLICATION_HOSTNAME: node.hostname,
      REPLICATION_SECUREPORT: String(node.replicationPort),
    },
    onLine: options.onLine,
  });
}

interface ClusterStatus {
  node_name?: string;
  connections?: { name?: string; url?: string; database_sockets?: { database: string; connected: boolean }[] }[];
}

const clientOf = (node: ClusterNodeSpec, admin: AdminCredentials) =>
  new OperationsClient(addressOf(node).operationsUrl, admin);

/** The peers this node replicates the `data` database with right now. */
async function connectedPeers(node: ClusterNodeSpec, admin: AdminCredentials): Promise<Set<string>> {
  const status = await clientOf(node, admin).call<ClusterStatus>({ operation: 'cluster_status' });
  const peers = new Set<string>();
  for (const connection of status.connections ?? []) {
    if (connection.database_sockets?.some((socket) => socket.database === 'data' && socket.connected))
      peers.add(connection.name ?? '');
  }
  return peers;
}

/**
 * Joins every node to the first with `add_node` (skipped for nodes it already knows: the join is
 * stored and survives restarts), then waits until every node replicates `data` with every other.
 *
 * A node can get stuck in a join (seen under load in the full test run, which starts several clusters):
 * each worker thread keeps a map of its replication certificates and rebuilds it from empty about
 * 1.5 s after any certificate change, which the join itself makes. A connection attempt that falls
 * into that window fails inside Harper ("Unable to find a valid certificate to use for replication
 * to connect to …", an uncaught rejection) and that thread never retries the connection; another
 * add_node does not revive it. Restarting the node's worker threads does: they set up their
 * connections anew from the stored join. So a node that has not connected in half the time gets
 * its workers restarted once.
 */
export async function joinCluster(
  nodes: ClusterNodeSpec[],
  admin: AdminCredentials,
  timeoutMs = 60_000,
): Promise<void> {
  const [first, ...others] = nodes;
  const known = await clientOf(first, admin).call<ClusterStatus>({ operation: 'cluster_status' });
  const knownNames = new Set((known.connections ?? []).map((connection) => connection.name));
  for (const node of others) {
    if (knownNames.has(node.hostname)) continue;
    await clientOf(first, admin).call({
      operation: 'add_node',
      url: addressOf(node).replicationUrl,
      // Only for this first contact between self-signed nodes on one host; see the file comment.
      verify_tls: false,
      authorization: { username: admin.username, password: admin.password },
    });
  }
  try {
    await waitUntilReplicating(nodes, admin, timeoutMs / 2);
  } catch (error) {
    // Only a wait that ran out is cured here; a refused call (credentials, a bad request) is not.
    if (!(error instanceof ReplicationNotReady)) throw error;
    const unconnected = new Set((await missingConnections(nodes, admin)).map(([from]) => from));
    // Connected but not carrying a write: restart them all, the stuck direction is not known.
    const stuck = unconnected.size > 0 ? nodes.filter((node) => unconnected.has(node)) : nodes;
    for (const node of stuck)
      await clientOf(node, admin).call({ operation: 'restart_service', service: 'http_workers' });
    await waitUntilReplicating(nodes, admin, timeoutMs / 2);
  }
}

/** The nodes did not connect, or did not carry a probe write, within the wait. */
class ReplicationNotReady extends Error {}

/** No HTTP answer at all: what a node restarting its worker threads gives for a few seconds. */
const unreachable = (error: unknown) => error instanceof OperationsError && error.status === undefined;

/**
 * Resolves once every node has a connected `data` replication socket to every other node, and a
 * record written on each node has reached every other one. Connected is not yet enough: right
 * after a join the nodes copy each other's databases, and in tests under load a write made in
 * those first moments did not always reach the other node; the probe proves the path end to end.
 */
async function waitUntilReplicating(
  nodes: ClusterNodeSpec[],
  admin: AdminCredentials,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await waitUntilConnected(nodes, admin, deadline);
  const probes = new Map<string, number>();
  let missing: string[] = [];
  let lastWrite = 0;
  while (Date.now() < deadline) {
    try {
      if (Date.now() - lastWrite > 2000) {
        // A probe written while the copy was still running may stay where it was written: write anew.
        lastWrite = Date.now();
        for (const node of nodes) {
          probes.set(node.hostname, lastWrite);
          await clientOf(node, admin).call({
            operation: 'upsert',
            database: 'data',
            table: 'clusterProbes',
            records: [{ id: node.hostname, time: lastWrite }],
          });
        }
      }
      missing = [];
      for (const node of nodes) {
        const seen = await clientOf(node, admin).call<{ id: string; time: number }[]>({
          operation: 'search_by_value',
          database: 'data',
          table: 'clusterProbes',
          attribute: 'id',
          value: '*',
          get_attributes: ['id', 'time'],
        });
        for (const other of nodes)
          if (other !== node && seen.find((probe) => probe.id === other.hostname)?.time !== probes.get(other.hostname))
            missing.push(`${other.name}->${node.name}`);
      }
      if (missing.length === 0) return;
    } catch (error) {
      // A node restarting its worker threads: probe again once it is back.
      if (!unreachable(error)) throw error;
      missing = [(error as Error).message];
      lastWrite = 0;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new ReplicationNotReady(`replication did not carry a write ${missing.join(', ')} within ${timeoutMs} ms`);
}

/** Each [from, to] pair of nodes where `from` has no connected `data` socket to `to`. */
async function missingConnections(
  nodes: ClusterNodeSpec[],
  admin: AdminCredentials,
): Promise<[ClusterNodeSpec, ClusterNodeSpec][]> {
  const missing: [ClusterNodeSpec, ClusterNodeSpec][] = [];
  for (const node of nodes) {
    // A node restarting its worker threads has nothing connected yet.
    const peers = await connectedPeers(node, admin).catch((error: unknown) => {
      if (unreachable(error)) return new Set<string>();
      throw error;
    });
    for (const other of nodes) if (other !== node && !peers.has(other.hostname)) missing.push([node, other]);
  }
  return missing;
}

/** Resolves once every node has a connected `data` replication socket to every other node. */
async function waitUntilConnected(nodes: ClusterNodeSpec[], admin: AdminCredentials, deadline: number): Promise<void> {
  let missing: [ClusterNodeSpec, ClusterNodeSpec][] = [];
  while (Date.now() < deadline) {
    missing = await missingConnections(nodes, admin);
    if (missing.length === 0) return;
    // Polled: replication connections are set up in the background (certificate exchange, retries).
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new ReplicationNotReady(
    `replication not connected in time: ${missing.map(([from, to]) => `${from.name}->${to.name}`).join(', ')}`,
  );
}

export function writeClusterFile(file: string, nodes: ClusterNodeSpec[]): void {
  writeFileSync(file, JSON.stringify({ nodes: nodes.map(addressOf) }, null, 2) + '\n');
}

export function readClusterFile(file: string): ClusterNodeAddress[] {
  if (!existsSync(file))
    throw new Error(`no cluster node list at ${file}: start the cluster with npm run cluster first`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { nodes: ClusterNodeAddress[] }).nodes;
}
