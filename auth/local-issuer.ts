/**
 * The offline default when ISSUER_BASE_URL is unset: this server is its own OAuth2 issuer. It signs
 * RS256 tokens with the key from issuer-key.ts and publishes the public half as a JWKS; the same
 * express-oauth2-jwt-bearer middleware that checks Auth0 tokens checks these (auth/index.ts).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { importJWK, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';
import type { Config } from '../config';
import type { IssuerKey } from './issuer-key';

/** The `iss` of locally issued tokens. */
export const localIssuer = (config: Config) => `${config.base}/`;

export const jwksOf = (key: IssuerKey): JSONWebKeySet => ({ keys: [key.publicJwk] });

export interface TokenRequest {
  agent: string;
  /** Seconds until expiry (default one day); negative for an already expired token. */
  expiresInSeconds?: number;
  /** Extra or overriding claims (e.g. `aud`). */
  claims?: JWTPayload;
}

/** Signs a token for the server `config` describes, or, given its record, for the server that wrote it. */
export async function signLocalToken(config: Config, key: IssuerKey, req: TokenRequest, record?: LocalIssuerRecord): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = {
    [record?.agentClaim ?? config.agentClaim]: req.agent,
    iss: record?.issuer ?? localIssuer(config),
    aud: record?.audience ?? config.audience,
    sub: req.agent,
    iat: now,
    exp: now + (req.expiresInSeconds ?? 24 * 3600),
    ...req.claims,
  };
  const privateKey = await importJWK(key.privateJwk, 'RS256');
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid }).sign(privateKey);
}

/**
 * What a token must carry for this server: written by the server next to its key
 * (`${dataDir}/local-issuer.json`) at every start, read by `npm run token`, so a token minted
 * without repeating the server's settings (PORT, RERUM_BASE, AUDIENCE, ...) is one it accepts.
 */
export interface LocalIssuerRecord {
  issuer: string;
  audience: string;
  agentClaim: string;
  /** Base of this server's object URLs, for the default agent. */
  idPrefix: string;
  /** When the server wrote it (ISO 8601), and its process id: shown to the user. */
  writtenAt: string;
  pid: number;
}

export const issuerRecordFile = (dataDir: string) => path.resolve(dataDir, 'local-issuer.json');

export const issuerRecordOf = (config: Config): LocalIssuerRecord => ({
  issuer: localIssuer(config),
  audience: config.audience,
  agentClaim: config.agentClaim,
  idPrefix: config.idPrefix,
  writtenAt: new Date().toISOString(),
  pid: process.pid,
});

/** Writes the record atomically (temp file + rename: PM2 workers write the same content at once). */
export function writeIssuerRecord(dataDir: string, record: LocalIssuerRecord): void {
  const file = issuerRecordFile(dataDir);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`);
  fs.renameSync(tmp, file);
}

/** The record in `dataDir`, or undefined when no server has written one (or it is not one). */
export function readIssuerRecord(dataDir: string): LocalIssuerRecord | undefined {
  let parsed: Partial<LocalIssuerRecord>;
  try {
    parsed = JSON.parse(fs.readFileSync(issuerRecordFile(dataDir), 'utf8')) as Partial<LocalIssuerRecord>;
  } catch {
    return undefined;
  }
  const strings = [parsed.issuer, parsed.audience, parsed.agentClaim, parsed.idPrefix];
  return strings.every((s) => typeof s === 'string' && s !== '') ? (parsed as LocalIssuerRecord) : undefined;
}
