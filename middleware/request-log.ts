/** One log line per request when it finishes: method, path, status, duration. Credentials never reach it. */
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { badRequest } from './http-error';

/** The URL with the values of credential-like query parameters masked. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:access_token|id_token|refresh_token|token|code|client_secret)=)[^&#]*/gi, '$1***');
}

export function requestLog(logger: Logger): RequestHandler {
  const log = logger.child({ component: 'http' });
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { method: req.method, url: redactUrl(req.originalUrl), status: res.statusCode, ms: Math.round(ms * 100) / 100 };
      if (res.statusCode >= 500) log.error(line, 'request failed');
      else log.info(line, 'request');
    });
    next();
  };
}

/**
 * A token in the query string (`?access_token=`) ends up in proxy logs, browser history and Referer
 * headers: refused with 400 on every route (send it as `Authorization: Bearer …`).
 */
export const refuseTokenInQuery: RequestHandler = (req, _res, next) => {
  if (/[?&]access_token=/i.test(req.originalUrl)) {
    return next(badRequest("Tokens are not accepted in the URL ('access_token'). Send it in the header 'Authorization: Bearer <token>'."));
  }
  next();
};
