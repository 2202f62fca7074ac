/**
 * All settings come from the environment (a `.env` file is read by server.ts before this runs).
 * Names follow the reference RERUM server's `.env`. `loadConfig` validates everything up front and
 * throws a ConfigError naming every bad variable, so a misconfigured server never starts half-way.
 */

export interface Config {
  port: number;
  apiVersion: string;
  /** Public base URL of this server, no trailing slash, e.g. http://localhost:3001 */
  base: string;
  /** `${base}/v1/` in the default set-up. */
  prefix: string;
  /** Prefix of every `@id` this server assigns, e.g. http://localhost:3001/v1/id/ */
  idPrefix: string;
  agentClaim: string;
  context: string;
  mongoConnectionString: string | undefined;
  mongoDbName: string;
  mongoCollection: string;
  down: boolean;
  readonly: boolean;
  audience: string;
  /** Set: tokens come from this OAuth2 issuer (Auth0). Unset: the server is its own local issuer. */
  issuerBaseUrl: string | undefined;
  botAgent: string | undefined;
  /** The Auth0 application that /client/* proxies for (with ISSUER_BASE_URL as the tenant). */
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** Where the embedded database and the local issuer key live. */
  dataDir: string;
  atlasSearch: boolean;
  caching: boolean;
  cacheMaxEntries: number;
  cacheMaxBytes: number;
  cacheTtlSeconds: number;
  /** How long a writer waits for sibling workers to acknowledge an invalidation. */
  cacheSyncTimeoutMs: number;
  /** How long a worker may serve from its cache after its last confirmed contact with the cluster. */
  cacheLeaseMs: number;
  /** Under PM2: no cached read for this long while siblings write → writes stop waiting for this worker (0: never). */
  cacheIdleMs: number;
  /** Largest JSON body (the reference: 5 MB). */
  maxBodyBytes: number;
  /** Largest text/plain body (the reference: 4 KB). */
  maxTextBodyBytes: number;
  /** `?limit=` cap on query and search (the reference's RERUM_MAX_QUERY_LIMIT, 500). */
  maxQueryLimit: number;
  /** `?skip=` cap on query and search (the reference's RERUM_MAX_QUERY_SKIP, 100000). */
  maxQuerySkip: number;
  /** Query admission (controllers/admission.ts): clauses, list length and nesting of a /query filter. */
  queryMaxClauses: number;
  queryMaxList: number;
  queryMaxDepth: number;
  /** `maxTimeMS` of every client query and search; over it → 503. */
  queryMaxTimeMs: number;
  /** Longest search text, in characters; over it → 413. */
  searchMaxChars: number;
  /** Most items in one bulkCreate / bulkUpdate; over it → 413. */
  bulkMaxItems: number;
  /** Slow clients: the request's headers must arrive within this (else 408 and the connection closed). */
  headersTimeoutMs: number;
  /** Slow clients: the whole request, body included, must arrive within this (else 408, closed). */
  requestTimeoutMs: number;
  /** SIGTERM/SIGINT: the process is gone at most this long after the signal, whatever is stuck. */
  shutdownTimeoutMs: number;
  /** The one agent allowed to clear the cache and read its detailed stats; unset: nobody may. */
  cacheAdminAgent: string | undefined;
  logLevel: string;
  /** Requests taking this long (ms) or longer are logged at warn (others at debug). */
  slowRequestMs: number;
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, dflt: number, min: number, max: number): number => {
    const raw = str(name);
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return dflt;
    }
    return n;
  };
  const bool = (name: string, dflt: boolean): boolean => {
    const raw = str(name);
    if (raw === undefined) return dflt;
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return dflt;
  };
  const url = (name: string, dflt: string | undefined): string | undefined => {
    const raw = str(name) ?? dflt;
    if (raw === undefined) return undefined;
    try {
      const u = new URL(raw);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      problems.push(`${name} must be an http(s) URL (got "${raw}")`);
    }
    return raw;
  };
  const name = (varName: string, dflt: string, pattern: RegExp, what: string): string => {
    const raw = str(varName) ?? dflt;
    if (!pattern.test(raw)) problems.push(`${varName} must be ${what} (got "${raw}")`);
    return raw;
  };

  const port = int('PORT', 3001, 0, 65535);
  const base = (url('RERUM_BASE', `http://localhost:${port}`) ?? '').replace(/\/+$/, '');
  const prefix = url('RERUM_PREFIX', `${base}/v1/`) ?? '';
  const idPrefix = url('RERUM_ID_PREFIX', `${base}/v1/id/`) ?? '';
  if (idPrefix && !idPrefix.endsWith('/')) problems.push(`RERUM_ID_PREFIX must end with "/" (got "${idPrefix}")`);

  const mongoConnectionString = str('MONGO_CONNECTION_STRING');
  if (mongoConnectionString && !/^mongodb(\+srv)?:\/\//.test(mongoConnectionString)) {
    problems.push('MONGO_CONNECTION_STRING must start with mongodb:// or mongodb+srv://');
  }

  const config: Config = {
    port,
    apiVersion: str('RERUM_API_VERSION') ?? '1.1.0',
    base,
    prefix,
    idPrefix,
    agentClaim: str('RERUM_AGENT_CLAIM') ?? 'http://store.rerum.io/agent',
    context: url('RERUM_CONTEXT', 'http://store.rerum.io/v1/context.json') ?? '',
    mongoConnectionString,
    mongoDbName: name('MONGODBNAME', 'rerum', /^[^/\\. "$*<>:|?]{1,63}$/, 'a MongoDB database name'),
    mongoCollection: name('MONGODBCOLLECTION', 'alpha', /^(?!system\.)[^$\0]{1,120}$/, 'a MongoDB collection name'),
    down: bool('DOWN', false),
    readonly: bool('READONLY', false),
    audience: str('AUDIENCE') ?? `${base}/v1`,
    issuerBaseUrl: url('ISSUER_BASE_URL', undefined),
    botAgent: str('BOT_AGENT'),
    clientId: str('CLIENT_ID'),
    clientSecret: str('CLIENT_SECRET'),
    dataDir: str('DATA_DIR') ?? 'data',
    atlasSearch: bool('ATLAS_SEARCH', false),
    caching: bool('CACHING', true),
    cacheMaxEntries: int('CACHE_MAX_ENTRIES', 1000, 1, 10_000_000),
    cacheMaxBytes: int('CACHE_MAX_BYTES', 64 * 1024 * 1024, 1024, 64 * 1024 * 1024 * 1024),
    cacheTtlSeconds: int('CACHE_TTL', 300, 0, 365 * 24 * 3600),
    cacheSyncTimeoutMs: int('CACHE_SYNC_TIMEOUT_MS', 500, 10, 60_000),
    cacheLeaseMs: int('CACHE_LEASE_MS', 1000, 50, 60_000),
    cacheIdleMs: int('CACHE_IDLE_MS', 5000, 0, 3_600_000),
    maxBodyBytes: int('MAX_BODY_BYTES', 5 * 1024 * 1024, 1024, 256 * 1024 * 1024),
    maxTextBodyBytes: int('MAX_TEXT_BODY_BYTES', 4 * 1024, 64, 256 * 1024 * 1024),
    maxQueryLimit: int('RERUM_MAX_QUERY_LIMIT', 500, 1, 1_000_000),
    maxQuerySkip: int('RERUM_MAX_QUERY_SKIP', 100_000, 0, 1_000_000_000),
    queryMaxClauses: int('QUERY_MAX_CLAUSES', 500, 1, 1_000_000),
    queryMaxList: int('QUERY_MAX_LIST', 1000, 1, 1_000_000),
    queryMaxDepth: int('QUERY_MAX_DEPTH', 32, 2, 100),
    queryMaxTimeMs: int('QUERY_MAX_TIME_MS', 5000, 1, 3_600_000),
    searchMaxChars: int('SEARCH_MAX_CHARS', 4096, 1, 10_000_000),
    bulkMaxItems: int('BULK_MAX_ITEMS', 1000, 1, 1_000_000),
    headersTimeoutMs: int('HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
    requestTimeoutMs: int('REQUEST_TIMEOUT_MS', 30_000, 100, 3_600_000),
    shutdownTimeoutMs: int('SHUTDOWN_TIMEOUT_MS', 15_000, 300, 600_000),
    // An agent id as tokens carry it in the agent claim (compared exactly).
    cacheAdminAgent: url('CACHE_ADMIN_AGENT', undefined),
    slowRequestMs: int('SLOW_REQUEST_MS', 1000, 0, 3_600_000),
    logLevel: name('LOG_LEVEL', 'info', /^(fatal|error|warn|info|debug|trace|silent)$/, 'a pino level'),
  };
  if (config.headersTimeoutMs > config.requestTimeoutMs) {
    problems.push(
      `HEADERS_TIMEOUT_MS (${config.headersTimeoutMs}) must not be larger than REQUEST_TIMEOUT_MS (${config.requestTimeoutMs})`,
    );
  }
  if (problems.length) throw new ConfigError(problems);
  return Object.freeze(config);
}
