/**
 * Builds the AppDeps (types/contracts.ts) the app runs on from a connected driver: the collection
 * with its indexes ensured, the read cache (CACHING), the auth layer and the database health check.
 * server.ts and the tests' createTestServer both use it, so tests run the wiring production runs.
 */
import type { Collection, MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import { createAuthLayer, type AuthLayerWithIssuer } from './auth';
import type { IssuerKey } from './auth/issuer-key';
import { createReadCache } from './cache';
import type { Config } from './config';
import { ensureIndexes } from './db/indexes';
import { ObjectStore } from './db/objects';
import type { AppDeps } from './types/contracts';
import type { RerumDocument } from './types/rerum';

export interface BuiltDeps extends AppDeps {
  auth: AuthLayerWithIssuer;
  /** The raw collection, for the tests' own inspection only: the app reads and writes through `store`. */
  collection: Collection<RerumDocument>;
}

export async function createAppDeps(
  config: Config,
  logger: Logger,
  client: MongoClient,
  opts: { issuerKey?: IssuerKey } = {},
): Promise<BuiltDeps> {
  const db = client.db(config.mongoDbName);
  const collection = db.collection<RerumDocument>(config.mongoCollection);
  await ensureIndexes(collection, config, logger);
  const cache = createReadCache(config, logger);
  return {
    config,
    collection,
    // The store tells the cache about every write; nothing else does.
    store: new ObjectStore(collection, (changes) => cache.invalidate(changes)),
    cache,
    auth: createAuthLayer(config, logger, opts.issuerKey),
    logger,
    pingDatabase: async () => {
      await db.command({ ping: 1 });
    },
  };
}
