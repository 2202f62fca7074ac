/**
 * Prints a bearer token signed by this server's local issuer (the offline default, when
 * ISSUER_BASE_URL is unset). Reads the same .env and DATA_DIR as the server, so the token is valid
 * for `npm start` on this machine.
 *
 *   npm run token -- --agent http://localhost:3001/v1/id/me [--expires 3600]
 *
 * The token is the last line of output.
 */
import { config as loadDotEnv } from 'dotenv';
import { loadOrCreateIssuerKey } from '../auth/issuer-key';
import { signLocalToken } from '../auth/local-issuer';
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
  const agent = arg('agent') ?? `${config.idPrefix}local-agent`;
  const expires = Number(arg('expires') ?? 24 * 3600);
  if (!Number.isInteger(expires)) throw new Error('--expires must be a whole number of seconds');
  const key = loadOrCreateIssuerKey(config.dataDir);
  const token = await signLocalToken(config, key, { agent, expiresInSeconds: expires });
  console.error(`token for agent ${agent}, audience ${config.audience}, valid ${expires} s:`);
  console.log(token);
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : `token: ${(err as Error).message}`);
  process.exit(1);
});
