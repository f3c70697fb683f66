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
import { OperationsClient } from './operations-client.js';

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
  options: { onLine?: (line: string) => void } = {},
): Promise<HarperInstance> {
  return startHarper({
    dataDir: node.dataDir,
    ports: node.ports,
    admin,
    env: { REPLICATION_HOSTNAME: node.hostname, REPLICATION_SECUREPORT: String(node.replicationPort) },
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
 */
export async function joinCluster(
  nodes: ClusterNodeSpec[],
  admin: AdminCredentials,
  timeoutMs = 60_000,
): Promise<void> {
  const [first, ...others] = nodes;
  const addNodes = async (all: boolean) => {
    const known = await clientOf(first, admin).call<ClusterStatus>({ operation: 'cluster_status' });
    const knownNames = new Set((known.connections ?? []).map((connection) => connection.name));
    for (const node of others) {
      if (!all && knownNames.has(node.hostname)) continue;
      await clientOf(first, admin).call({
        operation: 'add_node',
        url: addressOf(node).replicationUrl,
        // Only for this first contact between self-signed nodes on one host; see the file comment.
        verify_tls: false,
        authorization: { username: admin.username, password: admin.password },
      });
    }
  };
  await addNodes(false);
  try {
    await waitUntilReplicating(nodes, admin, timeoutMs / 2);
  } catch {
    // Seen once under load: the first node logged "Unable to find a valid certificate to use for
    // replication" (an uncaught exception inside Harper) and the nodes did not connect within a
    // minute. One more add_node per node (allowed for a known node) is the single retry; whether
    // it cures that case is not proven yet. If not, the error below says which direction failed.
    await addNodes(true);
    await waitUntilReplicating(nodes, admin, timeoutMs / 2);
  }
}

/**
 * Resolves once every node has a connected `data` replication socket to every other node, and a
 * record written on each node has reached every other one. Connected is not yet enough: right
 * after a join the nodes copy each other's databases, and in tests under load a write made in
 * those first moments did not always reach the other node; the probe proves the path end to end.
 */
export async function waitUntilReplicating(
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
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`replication did not carry a write ${missing.join(', ')} within ${timeoutMs} ms`);
}

/** Resolves once every node has a connected `data` replication socket to every other node. */
async function waitUntilConnected(nodes: ClusterNodeSpec[], admin: AdminCredentials, deadline: number): Promise<void> {
  let missing: string[] = [];
  while (Date.now() < deadline) {
    missing = [];
    for (const node of nodes) {
      const peers = await connectedPeers(node, admin);
      for (const other of nodes)
        if (other !== node && !peers.has(other.hostname)) missing.push(`${node.name}->${other.name}`);
    }
    if (missing.length === 0) return;
    // Polled: replication connections are set up in the background (certificate exchange, retries).
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`replication not connected in time: ${missing.join(', ')}`);
}

export function writeClusterFile(file: string, nodes: ClusterNodeSpec[]): void {
  writeFileSync(file, JSON.stringify({ nodes: nodes.map(addressOf) }, null, 2) + '\n');
}

export function readClusterFile(file: string): ClusterNodeAddress[] {
  if (!existsSync(file))
    throw new Error(`no cluster node list at ${file}: start the cluster with npm run cluster first`);
  return (JSON.parse(readFileSync(file, 'utf8')) as { nodes: ClusterNodeAddress[] }).nodes;
}
