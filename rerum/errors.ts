/**
 * What can go wrong in the RERUM rules and the object store, without HTTP: the HTTP layer
 * (middleware/error-handler.ts) gives each kind its status in one place.
 */
export type DomainErrorKind =
  /** An id or URI the client gave cannot name an object (400). */
  | 'InvalidId'
  /** The `_id` or Slug is already in use (409). */
  | 'IdTaken'
  /** Another request changed the object while this one was writing; nothing was changed (409). */
  | 'ConcurrentChange'
  /** A history or release tree cannot be mended; nothing was changed (500). */
  | 'BrokenTree'
  /** The database refused or lost a step of the write; what was done is undone (500). */
  | 'WriteFailed'
  /** Client content that cannot be stored safely: a `$` or NUL property name, `__proto__`, too deep (400). */
  | 'Unstorable'
  /** Client content too large to store under MongoDB's document size limit (413). */
  | 'TooLarge';

export class DomainError extends Error {
  constructor(
    public readonly kind: DomainErrorKind,
    message: string,
  ) {
    super(message);
    this.name = `${kind}Error`;
  }
}

export const invalidId = (message: string) => new DomainError('InvalidId', message);
/**
 * The `_id` or Slug is in use. `takenId` is the `_id` the database refused, when it said which;
 * `slugTaken` says the clash was on the slug (another document holds it), not on an `_id`.
 */
export class IdTakenError extends DomainError {
  constructor(
    public readonly takenId?: string,
    public readonly slugTaken = false,
  ) {
    super('IdTaken', 'The id provided already exists.  Please use a different _id or Slug.');
  }
}
export const idTaken = (takenId?: string) => new IdTakenError(takenId);
export const slugTaken = () => new IdTakenError(undefined, true);
export const concurrentChange = (what: string) =>
  new DomainError(
    'ConcurrentChange',
    `${what} was changed by another request while this one was in progress. Nothing was changed; try again.`,
  );
export const writeFailed = (message: string) => new DomainError('WriteFailed', message);
export const unstorable = (message: string) => new DomainError('Unstorable', message);
export const tooLarge = (message: string) => new DomainError('TooLarge', message);

/** A tree could not be mended: an `@id` it links to is missing. */
export class BrokenTreeError extends DomainError {
  constructor(message: string) {
    super('BrokenTree', message);
  }
}
