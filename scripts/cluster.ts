/**
 * `npm run cluster`: a local cluster of two Harper nodes on loopback, both running this component,
 * joined by Harper's own replication, each with its own data and HOME under .harper/cluster/
 * (or $DATA_DIR/cluster/). Prints each node's endpoints and the admin credentials (the same admin
 * on every node, generated once and saved owner-only in .harper/cluster/credentials.json); writes
 * the node list to .harper/cluster/nodes.json for `npm run users -- --cluster`. Ctrl-C stops every
 * node.
 *
 * Node A: HTTP 9926, MQTT 1883, operations 9925, replication 9933, hostname 127.0.0.1;
 * node B: HTTP 9936, MQTT 1893, operations 9935, replication 9943, hostname 127.0.0.2.
 * CLUSTER_HOSTS, CLUSTER_HTTP_PORTS, CLUSTER_MQTT_PORTS, CLUSTER_OPERATIONS_PORTS and
 * CLUSTER_REPLICATION_PORTS (comma-separated, one entry per node) change that; more hosts, more
 * nodes.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveCredentials } from '../launcher/credentials.js';
import {
  addressOf,
  clusterLayout,
  joinCluster,
  startClusterNode,
  writeClusterFile,
  type ClusterNodeSpec,
} from '../launcher/cluster-nodes.js';
import { COMPONENT_DIR, type HarperInstance } from '../launcher/harper-process.js';

const clusterDir = resolve(process.env.DATA_DIR ?? join(COMPONENT_DIR, '.harper'), 'cluster');

function summary(
  nodes: ClusterNodeSpec[],
  admin: { username: string; password: string; source: string },
  credentialsFile: string,
): string {
  const lines = [
    '',
    `${nodes.length} Harper nodes are running this component, joined by Harper's replication. Data: ${clusterDir}`,
    '',
  ];
  for (const node of nodes) {
    const address = addressOf(node);
    lines.push(
      `  Node ${node.name.toUpperCase()}  (replication ${address.replicationUrl})`,
      `    Dashboard   ${address.httpUrl}/`,
      `    REST        ${address.httpUrl}/sensors/`,
      `    WebSocket   ws://${node.hostname}:${node.ports.http}/sensors/<id>`,
      `    MQTT        ${address.mqttUrl}`,
      `    Operations  ${address.operationsUrl}/ (admin only)`,
      '',
    );
  }
  lines.push(
    admin.source === 'generated'
      ? `  Admin user "${admin.username}" on every node, password (shown once, saved in ${credentialsFile}):\n    ${admin.password}`
      : admin.source === 'file'
        ? `  Admin user "${admin.username}" on every node; password in ${credentialsFile}`
        : `  Admin user "${admin.username}" on every node, from HDB_ADMIN_USERNAME / HDB_ADMIN_PASSWORD`,
    '',
    '  Users and devices on every node: npm run users -- --cluster <command>',
    '',
    'Ctrl-C stops every node.',
    '',
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const nodes = clusterLayout(clusterDir);
  mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
  const credentialsFile = join(clusterDir, 'credentials.json');
  const installed = nodes.some((node) => existsSync(join(node.dataDir, 'root', 'harperdb-config.yaml')));
  // One admin for every node: the join authenticates with it, and the users CLI uses it everywhere.
  const admin = resolveCredentials(credentialsFile, installed);

  const running: HarperInstance[] = [];
  let stopping = false;
  const stopAll = async () => {
    await Promise.all(running.map((instance) => instance.stop('SIGTERM')));
  };
  // Harper must not outlive this process, whatever ends it.
  process.on('exit', () => running.forEach((instance) => void instance.stop('SIGTERM')));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping ${running.length} nodes...`);
    void stopAll().then(() => {
      console.log('All nodes stopped.');
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  console.log(`Starting ${nodes.length} nodes (${installed ? 'existing data' : 'first start: installing'})...`);
  try {
    await Promise.all(
      nodes.map(async (node) => {
        const instance = await startClusterNode(node, admin, {
          onLine: (line) => console.log(`[${node.name}] ${line}`),
        });
        running.push(instance);
        void instance.exited.then((code) => {
          if (!stopping)
            console.error(
              `Node ${node.name.toUpperCase()} stopped (${code}); the other nodes keep running. Ctrl-C stops them.`,
            );
        });
      }),
    );
    console.log('Joining the nodes with Harper replication...');
    await joinCluster(nodes, admin);
  } catch (error) {
    stopping = true;
    await stopAll();
    throw error;
  }
  writeClusterFile(join(clusterDir, 'nodes.json'), nodes);
  console.log(summary(nodes, admin, credentialsFile));
  await Promise.all(running.map((instance) => instance.exited));
  if (!stopping) {
    console.error('Every node has stopped.');
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
