/**
 * Error codes the embedded server answers with, named as mongod names them (codeName). Handlers
 * throw `fail('TypeMismatch', msg)` or `new CommandError(msg, Codes.TypeMismatch, 'TypeMismatch')`;
 * no numeric literals elsewhere.
 */
export const Codes = {
  InternalError: 1,
  BadValue: 2,
  FailedToParse: 9,
  TypeMismatch: 14,
  Overflow: 15,
  IllegalOperation: 20,
  NamespaceNotFound: 26,
  IndexNotFound: 27,
  ConflictingUpdateOperators: 40,
  CursorNotFound: 43,
  DollarPrefixedFieldName: 52,
  NamespaceExists: 48,
  MaxTimeMSExpired: 50,
  CommandNotFound: 59,
  ImmutableField: 66,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  CommandNotSupported: 115,
  ViewDepthLimitExceeded: 149,
  CommandNotSupportedOnView: 166,
  OptionNotSupportedOnView: 167,
  AmbiguousIndexKeyPattern: 181,
  DuplicateKey: 11000,
  BSONObjectTooLarge: 10334,
  Location15975: 15975,
  Location16990: 16990,
  Location17313: 17313,
  Location40601: 40601,
  IDLUnknownField: 40415,
  Location13113: 13113,
  Location51024: 51024,
  Location51132: 51132,
  Location51178: 51178,
  Location51182: 51182,
  Location51183: 51183,
  Location51186: 51186,
  Location51199: 51199,
  Location5739101: 5739101,
} as const;

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
