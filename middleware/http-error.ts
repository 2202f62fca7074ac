/**
 * The one error type handlers throw for client-visible failures. The app's error handler turns it
 * into `{ "status": 404, "error": "Not Found", "message": "..." }` with that status; anything that is
 * not an HttpError becomes a logged 500 with a generic message.
 */
import { STATUS_CODES } from 'node:http';

export class HttpError extends Error {
  constructor(
    public readonly status: number,
    message: string,
    /** Extra response headers, e.g. `Allow` for 405. */
    public readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toJSON(): { status: number; error: string; message: string } {
    return { status: this.status, error: STATUS_CODES[this.status] ?? 'Error', message: this.message };
  }
}

export const badRequest = (message: string) => new HttpError(400, message);
export const unauthorized = (message: string) => new HttpError(401, message);
export const forbidden = (message: string) => new HttpError(403, message);
export const notFound = (message: string) => new HttpError(404, message);
export const conflict = (message: string) => new HttpError(409, message);
export const methodNotAllowed = (allowed: string[]) =>
  new HttpError(405, `Method not allowed here. Allowed: ${allowed.join(', ')}`, { Allow: allowed.join(', ') });
