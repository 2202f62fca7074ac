/**
 * The real app for route tests: real Express app, real `mongodb` driver over TCP to the database
 * jest's global setup selected (MONGO_TEST_URI), a fresh database per server, real RS256 tokens
 * from the local issuer checked by express-oauth2-jwt-bearer.
 */
import type { Express } from 'express';
import { MongoClient, type Collection } from 'mongodb';
import pino from 'pino';
import { createApp } from '../../app';
import { generateIssuerKey, type IssuerKey } from '../../auth/issuer-key';
import { loadConfig, type Config } from '../../config';
import { createAppDeps } from '../../deps';
import type { AppDeps } from '../../types/contracts';
import type { RerumDocument } from '../../types/rerum';

export const TEST_BASE = 'http://rerum.test';
export const DEFAULT_AGENT = `${TEST_BASE}/v1/id/agent-default`;

export interface TestServer {
  app: Express;
  deps: AppDeps;
  config: Config;
  collection: Collection<RerumDocument>;
  /** The app's driver client (with command monitoring when asked for: `monitorCommands`). */
  client: MongoClient;
  /** The local issuer's key (to forge bad tokens in auth tests). */
  key: IssuerKey;
  /** A valid token for `agent` (default DEFAULT_AGENT); `claims` override or add claims. */
  token(agent?: string, claims?: Record<string, unknown>, expiresInSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

let sharedKey: IssuerKey | undefined;
let dbCounter = 0;

export function testMongoUri(): string {
  const uri = process.env.MONGO_TEST_URI;
  if (!uri) throw new Error('MONGO_TEST_URI is not set: run the tests through jest (its global setup starts the database)');
  return uri;
}

export async function createTestServer(
  opts: {
    caching?: boolean;
    env?: Record<string, string>;
    /** Where log lines go (pino JSON lines); default: pino's stdout. */
    logStream?: { write(line: string): void };
    /** Driver command monitoring on (tests that count database round trips). */
    monitorCommands?: boolean;
  } = {},
): Promise<TestServer> {
  const dbName = `t${process.pid}_${Date.now().toString(36)}_${++dbCounter}`;
  const config = loadConfig({
    RERUM_BASE: TEST_BASE,
    MONGODBNAME: dbName,
    CACHING: opts.caching ? 'true' : 'false',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATA_DIR: '/nonexistent-test-data-dir',
    ...opts.env,
  });
  const logger = opts.logStream ? pino({ level: config.logLevel }, opts.logStream) : pino({ level: config.logLevel });
  const client = new MongoClient(testMongoUri(), opts.monitorCommands ? { monitorCommands: true } : {});
  await client.connect();
  sharedKey ??= generateIssuerKey();
  const key = sharedKey;
  const deps = await createAppDeps(config, logger, client, { issuerKey: key });
  const { cache, auth, collection } = deps;
  const app = createApp(deps);
  return {
    app,
    deps,
    config,
    collection,
    client,
    key,
    token: (agent = DEFAULT_AGENT, claims, expiresInSeconds) =>
      auth.issueToken!({ agent, claims: claims as Record<string, never> | undefined, expiresInSeconds }),
    async close() {
      await cache.close();
      await client
        .db(config.mongoDbName)
        .dropDatabase()
        .catch(() => {});
      await client.close();
    },
  };
}
