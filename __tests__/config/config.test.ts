/** loadConfig: the reference's variable names, defaults for the embedded mode, and one clear error naming every bad value. */
import { ConfigError, loadConfig } from '../../config';

describe('loadConfig', () => {
  test('defaults run the embedded mode on localhost:3001', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3001,
      base: 'http://localhost:3001',
      prefix: 'http://localhost:3001/v1/',
      idPrefix: 'http://localhost:3001/v1/id/',
      audience: 'http://localhost:3001/v1',
      agentClaim: 'http://store.rerum.io/agent',
      mongoConnectionString: undefined,
      mongoDbName: 'rerum',
      mongoCollection: 'alpha',
      issuerBaseUrl: undefined,
      down: false,
      readonly: false,
      caching: true,
      atlasSearch: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  test('reads the reference names and derives URLs from RERUM_BASE', () => {
    const c = loadConfig({
      PORT: '8080',
      RERUM_BASE: 'https://store.example.org/',
      RERUM_API_VERSION: '1.2.0',
      MONGO_CONNECTION_STRING: 'mongodb+srv://u:p@cluster0.example.net/',
      MONGODBNAME: 'annotations',
      MONGODBCOLLECTION: 'beta',
      DOWN: 'false',
      READONLY: 'TRUE',
      ISSUER_BASE_URL: 'https://tenant.auth0.com/',
      BOT_AGENT: 'https://store.example.org/v1/id/bot',
      CACHING: 'off',
    });
    expect(c).toMatchObject({
      port: 8080,
      base: 'https://store.example.org',
      idPrefix: 'https://store.example.org/v1/id/',
      apiVersion: '1.2.0',
      mongoDbName: 'annotations',
      mongoCollection: 'beta',
      readonly: true,
      issuerBaseUrl: 'https://tenant.auth0.com/',
      botAgent: 'https://store.example.org/v1/id/bot',
      caching: false,
    });
  });

  test('names every bad variable in one ConfigError', () => {
    let err: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        RERUM_BASE: 'ftp://x',
        MONGO_CONNECTION_STRING: 'postgres://db',
        DOWN: 'maybe',
        CACHE_TTL: '-1',
        RERUM_ID_PREFIX: 'http://x/v1/id',
        LOG_LEVEL: 'loud',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const { problems, message } = err as ConfigError;
    for (const name of ['PORT', 'RERUM_BASE', 'MONGO_CONNECTION_STRING', 'DOWN', 'CACHE_TTL', 'RERUM_ID_PREFIX', 'LOG_LEVEL']) {
      expect(problems.some((p) => p.startsWith(name))).toBe(true);
    }
    expect(message).toMatch(/^Invalid configuration:/);
  });

  test('slow-client and shutdown timeouts: defaults, bounds, headers not longer than the request', () => {
    expect(loadConfig({})).toMatchObject({ headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, shutdownTimeoutMs: 15_000 });
    expect(loadConfig({ HEADERS_TIMEOUT_MS: '500', REQUEST_TIMEOUT_MS: '500', SHUTDOWN_TIMEOUT_MS: '1000' })).toMatchObject({
      headersTimeoutMs: 500,
      requestTimeoutMs: 500,
      shutdownTimeoutMs: 1000,
    });
    expect(() => loadConfig({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '10000' })).toThrow(
      /HEADERS_TIMEOUT_MS \(20000\) must not be larger than REQUEST_TIMEOUT_MS/,
    );
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: '0' })).toThrow(/SHUTDOWN_TIMEOUT_MS/);
  });

  test('blank values count as unset', () => {
    expect(loadConfig({ PORT: '  ', MONGO_CONNECTION_STRING: '' })).toMatchObject({ port: 3001, mongoConnectionString: undefined });
  });
});
