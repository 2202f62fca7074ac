/**
 * Entry point (`npm start` runs dist/server.js; PM2 runs one per worker).
 * Reads .env, validates the configuration, picks the database (db/select.ts), connects the
 * driver, ensures indexes, builds the cache, auth and app, and listens.
 *
 * Slow clients are dropped in seconds: headers must arrive within HEADERS_TIMEOUT_MS (10 s), the whole
 * request within REQUEST_TIMEOUT_MS (30 s); Node answers 408 and closes the connection.
 *
 * On SIGINT/SIGTERM (or PM2's shutdown message) it stops accepting connections and lets in-flight
 * requests finish for two thirds of SHUTDOWN_TIMEOUT_MS (15 s: 10 s), then closes every connection and
 * the cache's cluster channel, the Mongo client and any database it started. Whatever is stuck (a
 * request, a database that does not answer, a close that never resolves), the process exits at the
 * latest SHUTDOWN_TIMEOUT_MS after the signal (exit code 1 when forced). A PM2 cluster worker exits
 * no sooner than CLUSTER_EXIT_LINGER_MS after it stopped listening (see there).
 */
import cluster from 'node:cluster';
import http, { type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { config as loadDotEnv } from 'dotenv';
import { createApp } from './app';
import { ConfigError, loadConfig, type Config } from './config';
import { connectWithRetry, redactUri } from './db/connect';
import { selectDatabase } from './db/select';
import { createAppDeps } from './deps';
import { createLogger } from './logger';

/**
 * How long a cluster worker (PM2 cluster mode) stays up after it stops listening. The cluster's
 * primary (PM2's daemon) hands each new connection to a worker over IPC and learns of the worker's
 * close only when it gets to that message; a connection it handed over meanwhile is refused by a
 * worker that still runs (and given to another), but one that reaches a worker that has exited is
 * lost: its client waits for an answer that never comes. Staying up this long lets the daemon catch
 * up, even while it relays a write load. (Measured: 12 hung requests in 8 reloads of 2 workers under
 * 24 clients opening a connection per request, without it.)
 */
const CLUSTER_EXIT_LINGER_MS = 500;

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

  const server: Server = http.createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // Node looks for expired headers/request timeouts only this often (its default: every 30 s, so
      // a slow client would be held up to 30 s past its timeout).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.headersTimeoutMs / 4))),
    },
    app,
  );
  server.keepAliveTimeout = 5_000;
  server.listen(config.port);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  logger.info(
    { port: config.port, base: config.base, caching: config.caching, database: database.kind },
    `RERUM API listening on ${config.base}`,
  );

  let stopping = false;
  const shutdown = async (reason: string) => {
    if (stopping) return;
    stopping = true;
    const closeStageMs = Math.min(5_000, Math.floor(config.shutdownTimeoutMs / 3));
    const drainMs = config.shutdownTimeoutMs - closeStageMs;
    logger.info({ reason, drainMs, exitWithinMs: config.shutdownTimeoutMs }, 'shutting down: finishing in-flight requests');
    const force = setTimeout(() => {
      logger.warn({ drainMs }, 'in-flight requests did not finish in time: closing their connections');
      server.closeAllConnections();
    }, drainMs);
    force.unref();
    // Bounded whatever is stuck (a request that never ends, a close that never resolves): exit anyway.
    setTimeout(() => {
      logger.error({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'shutdown did not finish in time (SHUTDOWN_TIMEOUT_MS): exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs).unref();
    const closedAt = performance.now();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
    });
    clearTimeout(force);
    await cache.close().catch((err) => logger.error({ err }, 'cache close failed'));
    await client.close().catch((err) => logger.error({ err }, 'database client close failed'));
    await database.stop().catch((err) => logger.error({ err }, 'database stop failed'));
    const linger = closedAt + CLUSTER_EXIT_LINGER_MS - performance.now();
    if (cluster.isWorker && linger > 0) await sleep(linger);
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
  console.error('RERUM API failed to start:', err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
