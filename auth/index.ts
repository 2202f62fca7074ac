/**
 * Bearer-token auth for write routes (AuthLayer in types/contracts.ts).
 *
 * Both modes check tokens with express-oauth2-jwt-bearer and nothing else:
 * - ISSUER_BASE_URL set (production, Auth0): keys from the issuer's discovery document / JWKS.
 * - unset (offline default): this server is its own issuer (local-issuer.ts); the middleware gets
 *   the local public key, and the JWKS is also served at /.well-known/jwks.json.
 * Then an agent claim must be present (RERUM_AGENT_CLAIM, else the reference's two fallback claims),
 * or the request is 403: it becomes `__rerum.generatedBy`. BOT_AGENT grants nothing here: the
 * reference uses it only to let invalid tokens through, which this server never does.
 * READONLY=true answers every token-guarded route with 503 before the token is looked at, as the
 * reference does.
 */
import { Router, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { auth } from 'express-oauth2-jwt-bearer';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { HttpError, forbidden } from '../middleware/http-error';
import type { AuthLayer } from '../types/contracts';
import { issuerKeyFile, loadOrCreateIssuerKey, type IssuerKey } from './issuer-key';
import {
  issuerRecordFile,
  issuerRecordOf,
  jwksOf,
  localIssuer,
  signLocalToken,
  writeIssuerRecord,
  type TokenRequest,
} from './local-issuer';

type AuthOptions = NonNullable<Parameters<typeof auth>[0]>;

export interface AuthLayerWithIssuer extends AuthLayer {
  /** Present in local-issuer mode: signs a token this server accepts. */
  issueToken?(req: TokenRequest): Promise<string>;
}

/** Claims read after RERUM_AGENT_CLAIM, in this order (the reference's getAgentClaim). */
export const FALLBACK_AGENT_CLAIMS = ['http://devstore.rerum.io/v1/agent', 'http://store.rerum.io/agent'];
/** The reference's answer (403) to a valid token that names no agent. */
export const NO_AGENT_MESSAGE = 'Could not get agent from req.user.  Have you registered with RERUM?';

export const READONLY_MESSAGE = 'RERUM v1 is read only at this time.  We apologize for the inconvenience.  Try again later.';

export const ADMIN_UNSET_MESSAGE =
  'Clearing the cache and its detailed stats are turned off on this server: set CACHE_ADMIN_AGENT to the agent allowed to use them.';
export const NOT_ADMIN_MESSAGE = 'Only the agent named by CACHE_ADMIN_AGENT may clear the cache or read its detailed stats.';

const NO_TOKEN_HINT =
  'The request does not contain a valid "Authorization: Bearer <token>" header, so it is unauthorized. Include a token with your request.';

/** express-oauth2-jwt-bearer errors carry status 400/401 and a WWW-Authenticate header; keep both, as JSON. */
function tokenError(err: unknown): HttpError | unknown {
  const e = err as { status?: number; statusCode?: number; message?: string; headers?: Record<string, string> };
  const status = e.status ?? e.statusCode;
  if (typeof status !== 'number' || status >= 500) return err;
  const headers: Record<string, string> = {};
  const challenge = e.headers?.['WWW-Authenticate'];
  if (challenge) headers['WWW-Authenticate'] = challenge;
  // Malformed Authorization headers (400 from the library) are still "no usable token": 401, as the reference.
  const message = e.message && e.message !== 'Unauthorized' ? `The token was rejected: ${e.message}.` : NO_TOKEN_HINT;
  return new HttpError(401, message, headers);
}

/**
 * A local-issuer token refused for its issuer, audience or signature was most likely minted for
 * another server (other PORT, RERUM_BASE, AUDIENCE or DATA_DIR): the message says what this server
 * expects and how to get such a token.
 */
function withLocalIssuerHint(err: unknown, config: Config): unknown {
  const e = err as { message?: unknown };
  if (typeof e?.message !== 'string' || !/'iss'|'aud'|signature|no applicable key/.test(e.message)) return err;
  e.message =
    `${e.message}: this server accepts tokens from its local issuer "${localIssuer(config)}" for audience "${config.audience}", ` +
    `signed with the key in its DATA_DIR (${issuerKeyFile(config.dataDir)}). ` +
    "Mint one with `npm run token -- --agent <url>` (it reads these from the running server's DATA_DIR; give it the same DATA_DIR if the server has another)";
  return err;
}

/** How long a verified token is remembered at most (never past its `exp`), and how many at once. */
export const VERIFIED_TOKEN_TTL_MS = 60_000;
const VERIFIED_TOKEN_MAX = 10_000;

/**
 * `verify`, remembering the tokens it accepted: a request with the same Authorization header and
 * Host, and no other place a token or proof could come from (no DPoP header, no X-Forwarded-Host,
 * nothing named access_token in the URL or body), gets the same `req.auth` without the RS256
 * signature check again (about a tenth of a write's CPU time), until the token's `exp` or for at most
 * VERIFIED_TOKEN_TTL_MS. Everything else, and every refusal, goes through `verify` as before. A
 * signing key an external issuer withdraws keeps admitting the tokens verified with it for up to a
 * minute longer here: a small addition to the up to 10 minutes the library itself keeps using the
 * issuer's cached JWKS (cacheMaxAge).
 */
export function rememberVerified(verify: RequestHandler, ttlMs = VERIFIED_TOKEN_TTL_MS): RequestHandler {
  const seen = new Map<string, { auth: NonNullable<Request['auth']>; until: number }>();
  return (req, res, next) => {
    const h = req.headers;
    const body = req.body as unknown;
    const plain =
      typeof h.authorization === 'string' &&
      h.dpop === undefined &&
      h['x-forwarded-host'] === undefined &&
      !/access_token/i.test(req.url) &&
      !(body !== null && typeof body === 'object' && 'access_token' in body);
    const key = plain ? `${h.host ?? ''}\n${h.authorization}` : undefined;
    if (key !== undefined) {
      const known = seen.get(key);
      if (known && Date.now() < known.until) {
        req.auth = known.auth;
        return next();
      }
      if (known) seen.delete(key);
    }
    verify(req, res, (err?: unknown) => {
      const exp = req.auth?.payload?.exp;
      if (err === undefined && key !== undefined && req.auth && typeof exp === 'number') {
        if (seen.size >= VERIFIED_TOKEN_MAX) seen.clear();
        seen.set(key, { auth: req.auth, until: Math.min(Date.now() + ttlMs, exp * 1000) });
      }
      next(err);
    });
  };
}

export function createAuthLayer(config: Config, logger: Logger, issuerKey?: IssuerKey): AuthLayerWithIssuer {
  const log = logger.child({ component: 'auth' });
  const router = Router();
  let verify: RequestHandler;
  let issueToken: AuthLayerWithIssuer['issueToken'];

  if (config.issuerBaseUrl) {
    verify = auth({ audience: config.audience, issuerBaseURL: config.issuerBaseUrl, tokenSigningAlg: 'RS256' });
    log.info({ issuer: config.issuerBaseUrl, audience: config.audience }, 'auth: tokens from external issuer');
  } else {
    const key = issuerKey ?? loadOrCreateIssuerKey(config.dataDir);
    const jwks = jwksOf(key);
    const check = auth({
      audience: config.audience,
      issuer: localIssuer(config),
      publicKey: jwks as unknown as AuthOptions['publicKey'],
      tokenSigningAlg: 'RS256',
    });
    verify = (req, res, next) => check(req, res, (err?: unknown) => next(err === undefined ? err : withLocalIssuerHint(err, config)));
    // The key came from DATA_DIR: say next to it what tokens must carry, for `npm run token`.
    if (!issuerKey) {
      try {
        writeIssuerRecord(config.dataDir, issuerRecordOf(config));
      } catch (err) {
        log.warn(
          { err, file: issuerRecordFile(config.dataDir) },
          'auth: could not write the local issuer record; `npm run token` needs the same settings as the server',
        );
      }
    }
    router.get('/.well-known/jwks.json', (_req, res) => {
      res.json(jwks);
    });
    issueToken = (req) => signLocalToken(config, key, req);
    log.info(
      { issuer: localIssuer(config), audience: config.audience },
      'auth: local issuer (mint tokens with `npm run token -- --agent <url>`)',
    );
  }

  // As the reference: the configured claim, then the two claims RERUM's own Auth0 tenant has used.
  const claims = [...new Set([config.agentClaim, ...FALLBACK_AGENT_CLAIMS])];
  const agentOf = (req: Request): string => {
    for (const claim of claims) {
      const agent = req.auth?.payload?.[claim];
      if (typeof agent === 'string' && agent !== '') return agent;
    }
    return '';
  };

  const verifyRemembered = rememberVerified(verify);
  const verifyAgent = (req: Request, res: Response, next: NextFunction) => {
    verifyRemembered(req, res, (err?: unknown) => {
      if (err) return next(tokenError(err));
      // A valid token without an agent is 403, not 401 (clients refresh their token on 401 and would loop).
      if (!agentOf(req)) return next(forbidden(NO_AGENT_MESSAGE));
      next();
    });
  };

  const requireToken: RequestHandler = (req, res, next) => {
    if (config.readonly) return next(new HttpError(503, READONLY_MESSAGE));
    verifyAgent(req, res, next);
  };

  // Cache clear and detailed stats: one configured agent. Unset, no token could help, so 403 first.
  const admin = config.cacheAdminAgent;
  const requireAdmin: RequestHandler = (req, res, next) => {
    if (!admin) return next(forbidden(ADMIN_UNSET_MESSAGE));
    verifyAgent(req, res, (err?: unknown) => {
      if (err) return next(err);
      if (agentOf(req) !== admin) return next(forbidden(NOT_ADMIN_MESSAGE));
      next();
    });
  };

  return {
    requireToken,
    requireAdmin,
    agentOf,
    router,
    ...(issueToken ? { issueToken } : {}),
  };
}
