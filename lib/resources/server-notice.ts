/**
 * Subscribers learn why their stream ends when the server stops.
 *
 * Harper 4.7 stops its worker threads on SIGTERM without telling component code: WebSocket
 * clients saw the connection drop without a close frame (code 1006), SSE streams were cut and
 * MQTT connections reset. So whoever stops Harper announces it first, through this node's
 * `serverNotices` table: `npm start` does on Ctrl-C/SIGTERM and before a dev restart
 * (POST /server-notice, admin only, then a short pause). Every worker thread follows the table and
 * ends its live subscriptions (lib/streams/slow-consumers.ts): WebSocket and SSE subscribers get a last
 * event `{"type":"error","value":{"error":"server_shutting_down",...}}`, MQTT connections are
 * closed in order (Harper does not tell a resource which MQTT version a connection speaks, so no
 * MQTT 5 DISCONNECT reason can be sent). Nothing acknowledged is lost: clients resume with
 * `?startTime=<last localTime>` or their durable MQTT session.
 *
 * The notice's id is the node's name, so a notice that replicates to other nodes of a cluster
 * is ignored there.
 */
import { Resource, tables } from 'harperdb';
import { authorize } from '../access/policy.js';
import { nodeName } from '../write-path/writer-identity.js';
import { Refusal } from '../rules/errors.js';
import { flushAllRollups } from './rollups.js';
import { endAll } from '../streams/slow-consumers.js';
import type { User } from '../harper/types.js';

interface Notice {
  id: string;
  message: string;
  time: number;
}

interface NoticeTable {
  put(record: Notice): Promise<unknown>;
  subscribe(request: { omitCurrent: boolean }): Promise<AsyncIterable<{ type?: string; value?: Partial<Notice> }>>;
}

const NoticesTable = tables.serverNotices as unknown as NoticeTable;

const thisNode = () => nodeName() ?? 'local';

async function follow(): Promise<void> {
  try {
    for await (const event of await NoticesTable.subscribe({ omitCurrent: true })) {
      if (event.type !== 'put' || event.value?.id !== thisNode()) continue;
      // Rollups kept in memory are written before the stop (lib/resources/rollups.ts).
      void flushAllRollups().catch((error: unknown) => console.error('rollups: writing before the stop failed', error));
      endAll(
        new Refusal({
          error: 'server_shutting_down',
          message: `${event.value.message ?? 'the server is stopping'}; reconnect and resume with ?startTime=<last localTime> (MQTT: clean: false) to miss nothing`,
        }).toJSON(),
      );
    }
  } catch (error) {
    console.error(
      'server notices: could not follow the serverNotices table; subscribers will not be told before a stop',
      error,
    );
  }
}
setImmediate(() => void follow());

/** POST /server-notice {"message": "..."}: tells this node's subscribers that it is stopping. */
export class ServerNotice extends (Resource as unknown as new (...args: never[]) => object) {
  allowCreate(user: User | undefined) {
    return authorize(user, 'notices', 'write', null, () => false);
  }

  async post(data: unknown) {
    const message =
      typeof (data as { message?: unknown } | null)?.message === 'string'
        ? String((data as { message: string }).message).slice(0, 200)
        : 'the server is stopping';
    await NoticesTable.put({ id: thisNode(), message, time: Date.now() });
    return { status: 204 };
  }
}
