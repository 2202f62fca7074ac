/**
 * Prints a bearer token signed by this server's local issuer (the offline default, when
 * ISSUER_BASE_URL is unset). Reads the same .env as the server, signs with the key in DATA_DIR and
 * takes the issuer, audience and agent claim from the record the server last started on that
 * DATA_DIR wrote next to the key (auth/local-issuer.ts): a server started with `PORT=3901 npm start`
 * accepts a token from a plain `npm run token`. Without a record (no server started yet) they come
 * from this process's settings, as the server would compute them.
 *
 *   npm run token -- --agent http://localhost:3001/v1/id/me [--expires 3600]
 *
 * The token is the last line of output.
 */
import { config as loadDotEnv } from 'dotenv';
import { loadOrCreateIssuerKey } from '../auth/issuer-key';
import { localIssuer, readIssuerRecord, signLocalToken } from '../auth/local-issuer';
import { ConfigError, loadConfig } from '../config';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

async function main() {
  loadDotEnv({ quiet: true });
  const config = loadConfig(process.env);
  if (config.issuerBaseUrl) {
    throw new Error(`ISSUER_BASE_URL is set (${config.issuerBaseUrl}): tokens come from that issuer, not from this script.`);
  }
  const record = readIssuerRecord(config.dataDir);
  const issuer = record?.issuer ?? localIssuer(config);
  const audience = record?.audience ?? config.audience;
  const agent = arg('agent') ?? `${record?.idPrefix ?? config.idPrefix}local-agent`;
  const expires = Number(arg('expires') ?? 24 * 3600);
  if (!Number.isInteger(expires)) throw new Error('--expires must be a whole number of seconds');
  const key = loadOrCreateIssuerKey(config.dataDir);
  const token = await signLocalToken(config, key, { agent, expiresInSeconds: expires }, record);
  if (record) {
    console.error(`issuer ${issuer}: the server last started with DATA_DIR=${config.dataDir} (pid ${record.pid}, ${record.writtenAt})`);
    if (record.issuer !== localIssuer(config) || record.audience !== config.audience) {
      console.error(
        `  (the settings here would give issuer ${localIssuer(config)}, audience ${config.audience}: the token follows the server)`,
      );
    }
  } else {
    console.error(`issuer ${issuer}: no server has started with DATA_DIR=${config.dataDir} yet; start it with the same settings as this`);
  }
  console.error(`token for agent ${agent}, audience ${audience}, valid ${expires} s:`);
  console.log(token);
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : `token: ${(err as Error).message}`);
  process.exit(1);
});
