/**
 * MongoDB server error codes by the name mongod reports as `codeName` (codes without a name in
 * mongod's error_codes.yml are reported as `Location<code>`). The one list: the embedded database
 * answers with these (db/embedded/errors.ts), the HTTP layer recognises them in driver errors.
 */
export const ServerCodes = {
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
  NamespaceExists: 48,
  DollarPrefixedFieldName: 52,
  MaxTimeMSExpired: 50,
  CommandNotFound: 59,
  ImmutableField: 66,
  InvalidOptions: 72,
  InvalidNamespace: 73,
  IndexOptionsConflict: 85,
  IndexKeySpecsConflict: 86,
  CommandNotSupported: 115,
  DocumentValidationFailure: 121,
  ViewDepthLimitExceeded: 149,
  CommandNotSupportedOnView: 166,
  OptionNotSupportedOnView: 167,
  AmbiguousIndexKeyPattern: 181,
  QueryFeatureNotAllowed: 224,
  /** Stable API: an apiVersion this server does not have. */
  APIVersionError: 322,
  /** Stable API: apiStrict and a command or stage outside the declared version. */
  APIStrictError: 323,
  /** apiStrict or apiDeprecationErrors without apiVersion. */
  Location4886600: 4886600,
  DuplicateKey: 11000,
  BSONObjectTooLarge: 10334,
  /** An expression operator given the wrong number of arguments. */
  Location16020: 16020,
  /** `$mod` with a zero divisor or a malformed operand (older servers). */
  Location16810: 16810,
  Location15975: 15975,
  Location16990: 16990,
  Location17287: 17287,
  Location17313: 17313,
  /** Inclusion and exclusion mixed in one projection. */
  Location31253: 31253,
  IDLUnknownField: 40415,
  /** $out or $merge not the last stage. */
  Location40601: 40601,
  /** $merge: no document matched and whenNotMatched is 'fail'. */
  Location13113: 13113,
  Location17385: 17385,
  Location51132: 51132,
  Location51178: 51178,
  Location51182: 51182,
  /** $merge: the `on` fields have no unique index. */
  Location51183: 51183,
  Location51186: 51186,
  Location51199: 51199,
  /** Statement constants (`c`) on an update that is not a pipeline. */
  Location51198: 51198,
  Location51024: 51024,
  /** An invalid regular expression. */
  Location51091: 51091,
  Location5739101: 5739101,
} as const;

export type ServerCodeName = keyof typeof ServerCodes;

/** The numeric code of a driver or server error, if it carries one. */
export function codeOf(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null | undefined)?.code;
  return typeof c === 'number' ? c : undefined;
}

/** True when the error carries the code of one of these names. */
export function hasCode(err: unknown, ...names: ServerCodeName[]): boolean {
  const c = codeOf(err);
  return c !== undefined && names.some((n) => ServerCodes[n] === c);
}
