/**
 * `__rerum` for new objects, new versions and imports, and the rules that read it.
 */
import type { Config } from '../config';
import type { DeletedDocument, RerumMetadata, StoredDocument, RerumDocument } from '../types/rerum';

/** The reference's timestamp: ISO 8601 without the trailing "Z". */
export const nowStamp = (now: Date = new Date()): string => now.toISOString().replace('Z', '');

type MetaConfig = Pick<Config, 'context' | 'apiVersion'>;

function base(config: MetaConfig, generator: string, createdAt: string): Omit<RerumMetadata, 'history' | 'releases'> {
  return {
    '@context': config.context,
    alpha: true,
    APIversion: config.apiVersion,
    createdAt,
    generatedBy: generator,
    isOverwritten: '',
    isReleased: '',
  };
}

/** A brand-new object: the root of its own history tree. */
export function rootMetadata(config: MetaConfig, generator: string, now = nowStamp(), slug?: string): RerumMetadata {
  const meta: RerumMetadata = {
    ...base(config, generator, now),
    releases: { previous: '', next: [], replaces: '' },
    history: { prime: 'root', previous: '', next: [] },
  };
  if (slug) meta.slug = slug;
  return meta;
}

/**
 * A new version made from `original` (update, patch, set, unset, bulk update). Its prime is the
 * original's prime (or the original itself when that is the root), its previous is the original, and
 * its nearest released ancestor is the original if released, else the original's own.
 */
export function versionMetadata(config: MetaConfig, generator: string, original: RerumDocument, now = nowStamp()): RerumMetadata {
  const originalId = original['@id'] ?? '';
  return {
    ...base(config, generator, now),
    releases: { previous: isReleased(original) ? originalId : original.__rerum.releases.previous, next: [], replaces: '' },
    history: { prime: treeRootOf(original), previous: originalId, next: [] },
  };
}

/** The `@id` of the root of `doc`'s history tree: its own for the root, else its `history.prime`. */
export const treeRootOf = (doc: RerumDocument): string =>
  doc.__rerum.history.prime === 'root' ? (doc['@id'] ?? '') : doc.__rerum.history.prime;

/** `__rerum` after an overwrite at `stamp`: the same, with `isOverwritten` stamped. */
export const overwrittenMetadata = (original: RerumDocument, stamp: string): RerumMetadata => ({
  ...structuredClone(original.__rerum),
  isOverwritten: stamp,
});

/** An object imported by an update naming a non-RERUM `@id`: a new root that remembers its origin. */
export function importMetadata(config: MetaConfig, generator: string, externalId: string, now = nowStamp()): RerumMetadata {
  const meta = rootMetadata(config, generator, now);
  meta.history.previous = externalId;
  return meta;
}

export const isDeleted = (doc: StoredDocument): doc is DeletedDocument => Object.prototype.hasOwnProperty.call(doc, '__deleted');

export const isReleased = (doc: StoredDocument): boolean =>
  !isDeleted(doc) && typeof doc.__rerum?.isReleased === 'string' && doc.__rerum.isReleased !== '';

/**
 * Only the generating agent, or the configured bot, may overwrite, release or delete an object.
 * An object without a generator can be changed by anyone (as the reference).
 */
export function mayModify(doc: RerumDocument, agent: string): boolean {
  const generator = doc.__rerum?.generatedBy ?? agent;
  return generator === agent;
}
