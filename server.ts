/**
 * Entry point (`npm start` runs dist/server.js; PM2 runs one per worker).
 * Reads .env, validates the configuration, picks the database (db/select.ts), connects the
 * driver, ensures indexes, builds the cache, auth and app, and listens. On SIGINT/SIGTERM (or PM2's
 * shutdown message) it stops accepting connections, lets in-flight requests finish (10 s at most),
 * then closes the cache's cluster channel, the Mongo client and any database it started.
 */
import type { Server } from 'node:http';
import { config as loadDotEnv } from 'dotenv';
import { createApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
import { connectWithRetry, redactUri } from './db/connect';
import { selectDatabase } from './db/select';
import { createAppDeps } from './deps';
import { createLogger } from './logger';

const DRAIN_MS = 10_000;

function readConfig(): Config {
  loadDotEnv({ quiet: true });
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger(config.logLevel);
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled promise rejection'));

  const database = await selectDatabase({ purpose: 'server', dataDir: config.dataDir, logger });
  const client = await connectWithRetry(database.uri, logger);
  logger.info({ uri: redactUri(database.uri), db: config.mongoDbName, collection: config.mongoCollection }, 'database connected');
  const deps = await createAppDeps(config, logger, client);
  const { cache } = deps;
  const app = createApp(deps);

  const server: Server = app.listen(config.port);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 5_000;
  // Slow clients are dropped in seconds: the headers must arrive within 10 s, the whole request
  // (body included) within 30 s; Node answers 408 and closes the connection.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  logger.info({ port: config.port, base: config.base, caching: config.caching, database: database.kind }, `RERUM API listening on ${config.base}`);

  let stopping = false;
  const shutdown = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ reason }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
    force.unref();
    // Bounded whatever is stuck (a request that never ends, a close that never resolves): exit anyway.
    setTimeout(() => {
      logger.error('shutdown did not finish in time: exiting');
      process.exit(1);
    }, DRAIN_MS + 5_000).unref();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    clearTimeout(force);
    await cache.close().catch((err) => logger.error({ err }, 'cache close failed'));
    await client.close().catch((err) => logger.error({ err }, 'database client close failed'));
    await database.stop().catch((err) => logger.error({ err }, 'database stop failed'));
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('message', (msg) => {
    if (msg === 'shutdown') void shutdown('pm2 shutdown');
  });
}

main().catch((err) => {
  console.error('RERUM API failed to start:', err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});
