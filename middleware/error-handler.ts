/**
 * The end of the middleware chain: unknown routes → 404, and every error → a JSON body
 * `{status, error, message}` with the right status. Client mistakes caught by Express's body
 * parsers (bad JSON, too large, bad charset) keep their 4xx; anything unexpected is logged with its
 * stack and answered with a generic 500 that leaks nothing.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { DomainError, type DomainErrorKind } from '../rerum/errors';
import { HttpError, notFound } from './http-error';
import { redactUrl } from './request-log';

/** The one place domain errors (rerum/errors.ts) get their HTTP status. */
const DOMAIN_STATUS: Record<DomainErrorKind, number> = {
  InvalidId: 400,
  IdTaken: 409,
  ConcurrentChange: 409,
  BrokenTree: 500,
  WriteFailed: 500,
  Unstorable: 400,
  TooLarge: 413,
};

function fromDomainError(err: DomainError): HttpError {
  const message = err.kind === 'BrokenTree' ? `${err.message} Nothing was changed.` : err.message;
  return new HttpError(DOMAIN_STATUS[err.kind], message);
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(notFound(`There is no ${req.method} ${req.path} on this server. See /v1/api for the routes.`));
};

interface ParserError {
  type?: string;
  status?: number;
  statusCode?: number;
  message?: string;
  limit?: number;
  expose?: boolean;
}

/** Express/body-parser errors (they carry `type` and a 4xx `status`) as HttpErrors. */
function fromParserError(err: ParserError): HttpError | undefined {
  const status = err.status ?? err.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  switch (err.type) {
    case 'entity.parse.failed':
      return new HttpError(400, `The body of your request was invalid. It is not valid JSON: ${err.message ?? 'parse error'}`);
    case 'entity.too.large':
      return new HttpError(413, `The body of your request is too large. The limit is ${err.limit ?? 'the configured maximum'} bytes.`);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new HttpError(415, err.message ?? 'Unsupported body encoding.');
    case 'request.aborted':
    case 'request.size.invalid':
      return new HttpError(400, err.message ?? 'The request body was incomplete.');
    default:
      return err.expose !== false ? new HttpError(status, err.message ?? 'Bad request') : undefined;
  }
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  const log = logger.child({ component: 'http' });
  return (err, req, res, _next) => {
    const httpError =
      err instanceof HttpError ? err : err instanceof DomainError ? fromDomainError(err) : fromParserError(err as ParserError);
    if (res.headersSent) {
      log.error({ err, url: redactUrl(req.originalUrl) }, 'error after the response started');
      res.destroy();
      return;
    }
    if (!httpError) {
      log.error({ err, method: req.method, url: redactUrl(req.originalUrl) }, 'unhandled error');
      res.status(500).json(new HttpError(500, 'RERUM experienced a server issue while performing this action. It may not have completed.'));
      return;
    }
    if (httpError.status >= 500) log.error({ err, method: req.method, url: redactUrl(req.originalUrl) }, httpError.message);
    for (const [name, value] of Object.entries(httpError.headers)) res.setHeader(name, value);
    res.status(httpError.status);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    res.json(httpError);
  };
}
