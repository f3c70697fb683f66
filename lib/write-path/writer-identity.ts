/**
 * Who is writing: the identity of this writer (a worker thread of one Harper process on one node)
 * that the records it creates carry in their ids, and the node's name in a cluster.
 */
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { server } from 'harperdb';

/**
 * Names this writer in the ids it creates (readings, rollup parts, presence connections): Harper's node name (its
 * replication hostname, in a cluster), the worker thread, and a tag drawn when this process
 * started. Records written at the same instant by two threads or two nodes never share an id
 * (two nodes writing one sensor in the same millisecond made the same reading id, and replication
 * kept one of the two readings), and neither do those of one thread before and after a restart
 * (rollup parts are never read back, only added up, so a restarted writer starts new ones).
 */
const PROCESS_TAG = randomBytes(3).toString('hex');
let cachedWriter: string | undefined;
export function writer(): string {
  if (cachedWriter) return cachedWriter;
  const node = nodeName();
  const name = `${threadId}-${PROCESS_TAG}`;
  if (!node) return name;
  return (cachedWriter = `${node}:${name}`);
}

/**
 * This node's name in a cluster (Harper's replication hostname); undefined on a node that has
 * none. Known once Harper's configuration is loaded, which is before any request.
 */
export function nodeName(): string | undefined {
  return (server as unknown as { hostname?: string }).hostname;
}
