/**
 * A disposable two-node cluster for tests: the same code as `npm run cluster` (launcher/cluster-nodes.ts),
 * on free ports, with a temporary folder and a generated admin. Node A answers on 127.0.0.1 and node
 * B on 127.0.0.2, so a test that talks to B really talks to another address.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addressOf, joinCluster, startClusterNode, type ClusterNodeSpec } from '../../launcher/cluster-nodes.js';
import { freePort, type AdminCredentials, type HarperInstance } from '../../launcher/harper-process.js';
import type { HarperEndpoints } from './harper.js';

export interface TestNode {
  spec: ClusterNodeSpec;
  endpoints: HarperEndpoints;
  instance: HarperInstance;
}

export interface TestCluster {
  nodes: TestNode[];
  admin: AdminCredentials;
  /** Stops one node (SIGTERM, as an operator would). */
  stop(node: TestNode): Promise<void>;
  /**
   * Starts a stopped node again on its data and ports, and waits until it replicates again (the
   * join's wait, with its cure for a connection that died inside Harper; timeoutMs is the join's).
   */
  restart(node: TestNode, timeoutMs?: number): Promise<void>;
  dispose(): Promise<void>;
}

export function endpointsOf(spec: ClusterNodeSpec, admin: AdminCredentials): HarperEndpoints {
  const address = addressOf(spec);
  return {
    httpUrl: address.httpUrl,
    wsUrl: `ws://${spec.hostname}:${spec.ports.http}`,
    mqttUrl: address.mqttUrl,
    operationsUrl: address.operationsUrl,
    admin,
    logFile: join(spec.dataDir, 'root', 'log', 'hdb.log'),
  };
}

/** `env`: settings for every node's Harper (the component reads its own from the environment). */
export async function startTestCluster(options: { env?: Record<string, string> } = {}): Promise<TestCluster> {
  const { env } = options;
  const hosts = ['127.0.0.1', '127.0.0.2'];
  const dataDir = mkdtempSync(join(tmpdir(), 'backbone-cluster-'));
  const admin = { username: 'admin', password: randomBytes(16).toString('hex') };
  const specs: ClusterNodeSpec[] = [];
  for (const [i, hostname] of hosts.entries()) {
    const name = String.fromCharCode(97 + i);
    specs.push({
      name,
      hostname,
      ports: { http: await freePort(), mqtt: await freePort(), operations: await freePort() },
      replicationPort: await freePort(),
      dataDir: join(dataDir, name),
    });
  }
  const instances = await Promise.allSettled(specs.map((spec) => startClusterNode(spec, admin, { env })));
  const failed = instances.find((result) => result.status === 'rejected');
  if (failed) {
    await Promise.all(instances.map((result) => (result.status === 'fulfilled' ? result.value.stop() : undefined)));
    throw (failed as PromiseRejectedResult).reason;
  }
  const nodes = specs.map((spec, i) => ({
    spec,
    endpoints: endpointsOf(spec, admin),
    instance: (instances[i] as PromiseFulfilledResult<HarperInstance>).value,
  }));
  const cluster: TestCluster = {
    nodes,
    admin,
    async stop(node) {
      await node.instance.stop();
    },
    async restart(node, timeoutMs) {
      node.instance = await startClusterNode(node.spec, admin, { env });
      await joinCluster(specs, admin, timeoutMs);
    },
    async dispose() {
      await Promise.all(nodes.map((node) => node.instance.stop()));
      if (!process.env.KEEP_CLUSTER) rmSync(dataDir, { recursive: true, force: true });
      else console.log('kept', dataDir);
    },
  };
  try {
    await joinCluster(specs, admin);
  } catch (error) {
    await cluster.dispose();
    throw error;
  }
  return cluster;
}

/** Polls `read` until `done` holds for its result (replication converges within milliseconds, but asynchronously). */
export async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 15_000,
  what = 'convergence',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await read();
  while (!done(last)) {
    if (Date.now() > deadline)
      throw new Error(`no ${what} after ${timeoutMs} ms; last: ${String(JSON.stringify(last)).slice(0, 500)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    last = await read();
  }
  return last;
}
