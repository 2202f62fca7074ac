/**
 * The /client/* routes (and the old /v1/api/accessToken, /v1/api/refreshToken): how an application
 * registers with the Auth0 tenant behind this server and renews its tokens without holding the
 * client secret itself. The tenant is ISSUER_BASE_URL; the application is CLIENT_ID/CLIENT_SECRET.
 * Token requests are proxied to the tenant's `oauth/token` endpoint as the reference does; without
 * a tenant (the local issuer) they answer 501 saying why.
 */
import type { RequestHandler } from 'express';
import type { Config } from '../config';
import { HttpError, badRequest } from '../middleware/http-error';

/** How long the tenant gets to answer a token request. */
const TOKEN_TIMEOUT_MS = 10_000;

interface Tenant {
  base: string;
  clientId: string;
  clientSecret: string;
}

/** The configured tenant, or a 501 naming what is missing. */
function tenantOf(config: Config, needsSecret: boolean): Tenant {
  const missing = [
    ...(config.issuerBaseUrl ? [] : ['ISSUER_BASE_URL']),
    ...(config.clientId ? [] : ['CLIENT_ID']),
    ...(needsSecret && !config.clientSecret ? ['CLIENT_SECRET'] : []),
  ];
  if (missing.length) {
    const why = config.issuerBaseUrl
      ? `this server has no Auth0 application configured (${missing.join(', ')} unset)`
      : 'this server issues its own tokens and is not connected to an Auth0 tenant (ISSUER_BASE_URL unset)';
    throw new HttpError(501, `Not available: ${why}. Ask the server's operator for a token.`);
  }
  return { base: config.issuerBaseUrl!.replace(/\/*$/, '/'), clientId: config.clientId!, clientSecret: config.clientSecret ?? '' };
}

/** GET /client/register: the tenant's sign-up/authorize URL for this API, as text (as the reference). */
export function registerHandler(config: Config): RequestHandler {
  return (_req, res) => {
    const tenant = tenantOf(config, false);
    const params = new URLSearchParams({
      audience: config.audience,
      scope: 'offline_access',
      response_type: 'code',
      client_id: tenant.clientId,
      redirect_uri: config.prefix,
      state: 'register',
    });
    res.status(200).type('text/plain').send(`${tenant.base}authorize?${params.toString()}`);
  };
}

type Grant = { grant: 'refresh_token'; field: 'refresh_token' } | { grant: 'authorization_code'; field: 'authorization_code' };

/**
 * POST a token request to the tenant. Its success answer (`access_token`, `refresh_token` …) goes
 * back as it is with 200. Its refusal (`{error, error_description}`) keeps the tenant's 4xx status
 * (the reference answers 500); a tenant that cannot be reached or fails is 502.
 */
function tokenProxy(config: Config, { grant, field }: Grant): RequestHandler {
  return async (req, res) => {
    const tenant = tenantOf(config, true);
    const body = req.body as Record<string, unknown> | undefined;
    const value = body && typeof body === 'object' ? body[field] : undefined;
    if (typeof value !== 'string' || value === '') throw badRequest(`The request body must be JSON with a "${field}" string.`);
    const form: Record<string, string> = {
      grant_type: grant,
      client_id: tenant.clientId,
      client_secret: tenant.clientSecret,
      redirect_uri: config.prefix,
      ...(grant === 'refresh_token' ? { refresh_token: value } : { code: value }),
    };
    let upstream: Response;
    let answer: Record<string, unknown>;
    try {
      upstream = await fetch(`${tenant.base}oauth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(form),
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
      });
      answer = (await upstream.json()) as Record<string, unknown>;
    } catch (err) {
      throw new HttpError(502, `The Auth0 tenant could not be reached or did not answer with JSON: ${(err as Error).message}`);
    }
    if (upstream.ok && answer && typeof answer === 'object' && !answer.error) {
      res.status(200).json(answer);
      return;
    }
    const description = typeof answer?.error_description === 'string' ? answer.error_description : String(answer?.error ?? 'refused');
    const status = upstream.status >= 400 && upstream.status < 500 ? upstream.status : 502;
    throw new HttpError(status, `The Auth0 tenant refused the token request: ${description}`);
  };
}

/** POST /client/request-new-access-token `{refresh_token}` → new access token. */
export const newAccessTokenHandler = (config: Config) => tokenProxy(config, { grant: 'refresh_token', field: 'refresh_token' });
/** POST /client/request-new-refresh-token `{authorization_code}` → refresh and access tokens. */
export const newRefreshTokenHandler = (config: Config) => tokenProxy(config, { grant: 'authorization_code', field: 'authorization_code' });

/** GET /client/verify, behind the token check: 200 text when the token is good. */
export function verifyHandler(config: Config): RequestHandler {
  return (_req, res) => {
    res
      .status(200)
      .type('text/plain')
      .send(config.issuerBaseUrl ? 'The token was verified by Auth0' : "The token was verified by this server's local issuer");
  };
}
