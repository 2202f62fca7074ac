/**
 * Error codes the embedded server answers with, named as mongod names them (codeName). Handlers
 * throw `fail('TypeMismatch', msg)` or `new CommandError(msg, Codes.TypeMismatch, 'TypeMismatch')`;
 * no numeric literals elsewhere. The table itself is mql/codes.ts (shared with the HTTP layer).
 */
import { ServerCodes } from '../../mql';

export const Codes = ServerCodes;

export type CodeName = keyof typeof Codes;

export class CommandError extends Error {
  constructor(
    message: string,
    readonly code: number,
    readonly codeName: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** A CommandError for a named code. */
export function fail(name: CodeName, message: string, extra: Record<string, unknown> = {}): CommandError {
  return new CommandError(message, Codes[name], name, extra);
}

/** codeName for a numeric code (for errors that carry only a number). */
export function codeNameOf(code: number): string {
  for (const [k, v] of Object.entries(Codes)) if (v === code) return k;
  return `Location${code}`;
}
