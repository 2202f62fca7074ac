/**
 * PM2 cluster for the RERUM API.
 *
 *   npm run start:cluster   (builds, then `pm2 start ecosystem.config.cjs`)
 *   npm run stop:cluster
 *
 * - "rerum": cluster mode, dist/server.js, INSTANCES workers (default: one per core).
 * - Without MONGO_CONNECTION_STRING it also starts "rerum-db", the embedded MongoDB
 *   (dist/db/embedded/standalone.js) as its own forked app on EMBEDDED_MONGO_PORT (default 27027),
 *   persisting under DATA_DIR/embedded-mongo, and points every worker at it, so all workers share
 *   one database. The workers retry their first connection while it starts.
 * - The workers' read caches stay consistent through their own unix sockets and PM2's bus (cache/cluster-sync.ts).
 * Environment: a .env file in this directory is read first (values already in the environment win).
 */
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = __dirname;

function readDotEnv(file) {
  const out = {};
  if (!fs.existsSync(file)) return out;
  for (const line of fs.readFileSync(file, 'utf8').split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

const env = { ...readDotEnv(path.join(root, '.env')), ...process.env };
const pick = (name, dflt) => (env[name] !== undefined && String(env[name]).trim() !== '' ? String(env[name]).trim() : dflt);

const instances = (() => {
  const raw = pick('INSTANCES', '');
  if (raw === '' || raw === 'max') return os.cpus().length || 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n === 0) throw new Error(`INSTANCES must be a whole number or "max" (got "${raw}")`);
  return n; // negative: PM2 reads it as "cores minus n"
})();

const appName = pick('PM2_APP_NAME', 'rerum');
const dataDir = path.resolve(root, pick('DATA_DIR', 'data'));
const useEmbedded = pick('MONGO_CONNECTION_STRING', '') === '';
const embeddedPort = Number(pick('EMBEDDED_MONGO_PORT', '27027'));
/** A worker stops taking requests and drains for up to SHUTDOWN_TIMEOUT_MS (config.ts, server.ts); PM2 must
 * not SIGKILL it before that, or a reload drops requests still in flight. */
const shutdownTimeoutMs = Number(pick('SHUTDOWN_TIMEOUT_MS', '15000'));
const workerKillTimeoutMs = (Number.isFinite(shutdownTimeoutMs) ? shutdownTimeoutMs : 15000) + 2000;
const embeddedDbPath = path.resolve(root, pick('EMBEDDED_MONGO_DBPATH', path.join(dataDir, 'embedded-mongo')));

/** Only what the workers need from the environment; PM2 adds its own (pm_id, NODE_APP_INSTANCE…). */
const workerEnv = {
  NODE_ENV: pick('NODE_ENV', 'production'),
  DATA_DIR: dataDir,
  ...(useEmbedded ? { MONGO_CONNECTION_STRING: `mongodb://127.0.0.1:${embeddedPort}/?directConnection=true` } : {}),
};

const apps = [];

if (useEmbedded) {
  apps.push({
    name: `${appName}-db`,
    script: path.join(root, 'dist/db/embedded/standalone.js'),
    cwd: root,
    exec_mode: 'fork',
    instances: 1,
    autorestart: true,
    max_restarts: 10,
    kill_timeout: 10000, // let the database shut down cleanly
    env: {
      EMBEDDED_MONGO_PORT: String(embeddedPort),
      EMBEDDED_MONGO_DBPATH: embeddedDbPath,
      DATA_DIR: dataDir,
    },
  });
}

apps.push({
  name: appName,
  script: path.join(root, pick('RERUM_SCRIPT', 'dist/server.js')),
  cwd: root,
  exec_mode: 'cluster',
  instances,
  autorestart: true,
  max_restarts: 10,
  kill_timeout: workerKillTimeoutMs,
  listen_timeout: 15000,
  env: workerEnv,
});

module.exports = { apps };
