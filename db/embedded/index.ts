/**
 * Embedded MongoDB-wire-compatible server (see the module headers for the split):
 * wire-protocol (framing) → server (TCP) → commands (dispatch; handlers in commands-crud,
 * commands-aggregate, commands-catalog, with update-engine) → storage → collection (+ its
 * collection-indexes and planner; text-search, cursors) with optional
 * persistence (snapshot + journal under dbPath).
 */
import { Persistence } from './persistence';
import { WireServer, type EmbeddedLogger } from './server';
import { Storage } from './storage';

export type { EmbeddedLogger } from './server';

export interface EmbeddedMongoOptions {
  port?: number;
  host?: string;
  /** Directory for snapshot + journal; omit for a purely in-memory server. */
  dbPath?: string;
  logger?: EmbeddedLogger;
  /** Compact (snapshot + fresh journal) once the journal exceeds this many bytes; default 64 MiB. */
  compactJournalAtBytes?: number;
}

export interface EmbeddedMongoHandle {
  uri: string;
  port: number;
  stop(): Promise<void>;
}

const silent: EmbeddedLogger = { info() {}, warn() {} };

export async function startEmbeddedMongo(opts: EmbeddedMongoOptions = {}): Promise<EmbeddedMongoHandle> {
  const host = opts.host ?? '127.0.0.1';
  const logger = opts.logger ?? silent;
  const storage = new Storage();
  const persistence = opts.dbPath ? Persistence.open(storage, opts.dbPath, logger, opts.compactJournalAtBytes) : undefined;
  const server = new WireServer(storage, logger);
  let port: number;
  try {
    port = await server.listen(opts.port ?? 0, host);
  } catch (e) {
    persistence?.close();
    throw e;
  }
  const uriHost = host.includes(':') ? `[${host}]` : host;
  let stopped: Promise<void> | undefined;
  return {
    uri: `mongodb://${uriHost}:${port}/?directConnection=true`,
    port,
    stop() {
      stopped ??= (async () => {
        await server.close();
        persistence?.close();
      })();
      return stopped;
    },
  };
}
