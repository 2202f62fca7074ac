/**
 * The offline default when ISSUER_BASE_URL is unset: this server is its own OAuth2 issuer. It signs
 * RS256 tokens with the key from issuer-key.ts and publishes the public half as a JWKS; the same
 * express-oauth2-jwt-bearer middleware that checks Auth0 tokens checks these (auth/index.ts).
 */
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

export async function signLocalToken(config: Config, key: IssuerKey, req: TokenRequest): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = {
    [config.agentClaim]: req.agent,
    iss: localIssuer(config),
    aud: config.audience,
    sub: req.agent,
    iat: now,
    exp: now + (req.expiresInSeconds ?? 24 * 3600),
    ...req.claims,
  };
  const privateKey = await importJWK(key.privateJwk, 'RS256');
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid }).sign(privateKey);
}
