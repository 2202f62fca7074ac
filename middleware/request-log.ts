/**
 * One log line per request when it finishes: method, path, status, duration. Credentials never reach it.
 * Levels: an answer of 500 or more → error ("request failed"); one that took `slowMs` or longer → warn
 * ("slow request"); every other → debug ("request"). So at the default level (info) an ordinary
 * request costs no log line at all; LOG_LEVEL=debug logs every request.
 */
import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { badRequest } from './http-error';

/** The URL with the values of credential-like query parameters masked. */
export function redactUrl(url: string): string {
  return url.replace(/([?&](?:access_token|id_token|refresh_token|token|code|client_secret)=)[^&#]*/gi, '$1***');
}

export function requestLog(logger: Logger, slowMs: number): RequestHandler {
  const log = logger.child({ component: 'http' });
  return (req, res, next) => {
    const started = performance.now();
    res.on('finish', () => {
      const ms = performance.now() - started;
      const status = res.statusCode;
      const level = status >= 500 ? 'error' : ms >= slowMs ? 'warn' : 'debug';
      if (!log.isLevelEnabled(level)) return;
      const line = { method: req.method, url: redactUrl(req.originalUrl), status, ms: Math.round(ms * 100) / 100 };
      if (level === 'error') log.error(line, 'request failed');
      else if (level === 'warn') log.warn(line, 'slow request');
      else log.debug(line, 'request');
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
