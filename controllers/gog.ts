/**
 * The Gallery of Glosses routes (project-specific, as in the reference's controllers/gog.js):
 * - POST /gog/fragmentsInManuscript `{"ManuscriptWitness": uri}`: the WitnessFragments of a manuscript;
 * - POST /gog/glossesInManuscript   `{"ManuscriptWitness": uri}`: the Glosses referenced from them;
 * - GET  /gog/id/:_id: a Gallery object with the descriptive Annotations that target it merged in.
 * The two POSTs need a token whose agent is the Gallery's production agent, and only read data that
 * agent generated (current versions only). Answers are cached; every write drops them.
 */
import type { RequestHandler } from 'express';
import type { Document } from 'mongodb';
import { HttpError, badRequest, forbidden, notFound } from '../middleware/http-error';
import { publicIdOf, toResponse } from '../rerum/document';
import { isDeleted } from '../rerum/metadata';
import type { RerumDocument } from '../types/rerum';
import type { Kit } from './kit';
import { limitSkip, listHeaders, objectHeaders, sendRead } from './respond';

/** The Gallery's agents by RERUM id (production on store, development on devstore); only the last path segment is compared. */
export const GOG_PROD_AGENT = '61043ad4ffce846a83e700dd';
export const GOG_DEV_AGENT = '5afeebf3e4b0b0d588705d90';
const GOG_AGENTS = [GOG_PROD_AGENT, GOG_DEV_AGENT];

const lastSegment = (uri: string | undefined) => (uri ?? '').split('/').pop() ?? '';
/** Both spellings of an http(s) URI. */
const bothSchemes = (uri: string) => [uri.replace(/^https?/, 'http'), uri.replace(/^https?/, 'https')];
const ANNOTATION_TYPES = [{ type: 'Annotation' }, { '@type': 'Annotation' }, { '@type': 'oa:Annotation' }];
const LEAF = { '__rerum.history.next': { $exists: true, $size: 0 } };

/** Only the Gallery's production agent may ask (checked before the read cache, so a cached answer is the Gallery's only). */
export function requireGalleryAgent(kit: Kit): RequestHandler {
  return (req, _res, next) => {
    if (lastSegment(kit.agentOf(req)) !== GOG_PROD_AGENT) throw forbidden('Only the Gallery of Glosses can make this request.');
    next();
  };
}

/** The agent (requireGalleryAgent checked it) and the manuscript the body names by http(s) URI. */
function gogRequest(kit: Kit, req: Parameters<RequestHandler>[0]): { agent: string; manuscript: string } {
  const agent = kit.agentOf(req);
  const manuscript = (req.body as Record<string, unknown> | undefined)?.ManuscriptWitness;
  if (typeof manuscript !== 'string' || !manuscript.startsWith('http')) {
    throw badRequest('The body must be JSON like {"ManuscriptWitness":"witness_uri_here"}.');
  }
  return { agent, manuscript };
}

/** What a Gallery POST asks for: the agent's Annotations of one manuscript, one page of them. */
interface GalleryAsk {
  collection: string;
  agent: string;
  manuscript: string;
  skip: number;
  limit: number;
}

/** The first stages both POSTs share: the agent's current Annotations whose body is partOf the manuscript, a page of them, their targets as `witnessFragment`. */
function annotationsOfManuscript({ collection, agent, manuscript, skip, limit }: GalleryAsk): Document[] {
  const [http, https] = bothSchemes(manuscript);
  return [
    {
      $match: {
        ...LEAF,
        $and: [
          { $or: ANNOTATION_TYPES },
          { $or: [{ 'body.partOf.value': http }, { 'body.partOf.value': https }, { 'body.partOf': http }, { 'body.partOf': https }] },
          { $or: bothSchemes(agent).map((a) => ({ '__rerum.generatedBy': a })) },
        ],
      },
    },
    { $sort: { _id: 1 } },
    { $skip: skip },
    { $limit: limit },
    { $lookup: { from: collection, localField: 'target', foreignField: '@id', as: 'witnessFragment' } },
  ];
}

const FRAGMENT_TYPES = [{ 'witnessFragment.type': 'WitnessFragment' }, { 'witnessFragment.@type': 'WitnessFragment' }];

/** Those Annotations' WitnessFragment targets (current versions only if `leafOnly`), one `{"@id", "@type": "WitnessFragment"}` per id. */
function witnessFragments(ask: GalleryAsk, leafOnly: boolean): Document[] {
  return [
    ...annotationsOfManuscript(ask),
    {
      $match: leafOnly
        ? { 'witnessFragment.__rerum.history.next': { $exists: true, $size: 0 }, $or: FRAGMENT_TYPES }
        : { $or: FRAGMENT_TYPES },
    },
    { $project: { _id: 0, '@id': '$witnessFragment.@id', '@type': 'WitnessFragment' } },
    { $unwind: { path: '$@id' } },
  ];
}

/** A Gallery POST: the unique `@id`s `pipeline` finds for the manuscript asked, `?limit=` (50) `&skip=` over its Annotations. */
function galleryListHandler(kit: Kit, pipeline: (ask: GalleryAsk) => Document[]): RequestHandler {
  const { config, store } = kit.deps;
  return async (req, res) => {
    const { agent, manuscript } = gogRequest(kit, req);
    const { limit, skip } = limitSkip(req, config, 50);
    const found = await store.aggregate(pipeline({ collection: config.mongoCollection, agent, manuscript, skip, limit }));
    sendRead(req, res, uniqueById(found), listHeaders(config));
  };
}

/** One entry per `@id` (the reference means to, but its Set of objects keeps duplicates). */
function uniqueById(items: Document[]): Document[] {
  const seen = new Set<string>();
  return items.filter((i) => {
    const key = JSON.stringify(i['@id']);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** POST /gog/fragmentsInManuscript: `[{"@id", "@type": "WitnessFragment"}]`, the manuscript's current WitnessFragments. */
export const fragmentsHandler = (kit: Kit): RequestHandler => galleryListHandler(kit, (ask) => witnessFragments(ask, true));

/** POST /gog/glossesInManuscript: `[{"@id", "@type": "Gloss"}]`, the glosses the fragments' Annotations reference. */
export const glossesHandler = (kit: Kit): RequestHandler =>
  galleryListHandler(kit, (ask) => [
    ...witnessFragments(ask, false),
    { $lookup: { from: ask.collection, localField: '@id', foreignField: 'target', as: 'anno' } },
    { $match: { 'anno.body.references': { $exists: true } } },
    { $project: { _id: 0, '@id': '$anno.body.references.value', '@type': 'Gloss' } },
    { $unwind: { path: '$@id' } },
    { $unwind: { path: '$@id' } },
  ]);

/**
 * The descriptive Annotations of `entity` (current versions, by its generator, targeting its URI as
 * `target`, `target.@id` or `target.id`) merged in as DEER does: each Annotation with a one-key
 * body adds `{value, source, evidence}` under that key (several make an array).
 */
async function expand(kit: Kit, entity: RerumDocument, generator: string | undefined): Promise<RerumDocument> {
  const targetId = String(entity['@id'] ?? (entity as Record<string, unknown>).id ?? '');
  if (!targetId) return entity;
  const and: Document[] = [];
  const filter: Document = { ...LEAF, $and: and };
  if (targetId.startsWith('http')) {
    and.push({ $or: ['target', 'target.@id', 'target.id'].flatMap((k) => bothSchemes(targetId).map((t) => ({ [k]: t }))) });
  } else {
    filter.target = targetId;
  }
  and.push({ $or: ANNOTATION_TYPES });
  if (generator) {
    if (generator.startsWith('http')) and.push({ $or: bothSchemes(generator).map((g) => ({ '__rerum.generatedBy': g })) });
    else filter['__rerum.generatedBy'] = generator;
  }
  const annotations = await kit.deps.store.find(filter as never);
  const expanded: Record<string, unknown> = structuredClone(entity);
  for (const anno of annotations as Record<string, unknown>[]) {
    const body = anno.body;
    if (!body || typeof body !== 'object' || Array.isArray(body)) continue;
    const keys = Object.keys(body);
    if (keys.length !== 1) continue;
    const key = keys[0];
    const assertion = (body as Record<string, unknown>)[key] as Record<string, unknown> | null | undefined;
    const asObject = assertion && typeof assertion === 'object' ? assertion : undefined;
    const valueObject = {
      value: asObject?.value ?? assertion,
      source: asObject?.source ?? {
        citationSource: anno['@id'] ?? anno.id,
        citationNote: anno.label ?? anno.name ?? 'Composed object from DEER',
        comment: 'Learn about the assembler for this object at https://github.com/CenterForDigitalHumanities/deer',
      },
      evidence: asObject?.evidence ?? anno.evidence ?? '',
    };
    if (Object.prototype.hasOwnProperty.call(expanded, key)) {
      const current = expanded[key];
      expanded[key] = Array.isArray(current) ? [...current, valueObject] : [current, valueObject];
    } else {
      expanded[key] = valueObject;
    }
  }
  return expanded as RerumDocument;
}

/** GET /gog/id/:_id: the Gallery object (by id or slug) expanded; 404 unknown or deleted, 403 not the Gallery's. */
export function expandedIdHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const id = String(req.params._id);
    const found = await kit.store.findBySegment(id);
    if (!found || isDeleted(found)) throw notFound(`No RERUM object with id '${id}'`);
    const generator = found.__rerum?.generatedBy;
    if (!GOG_AGENTS.includes(lastSegment(generator))) {
      throw new HttpError(403, 'This request can only be made for Gallery of Glosses generated data.');
    }
    const obj = toResponse(await expand(kit, found, generator), config.idPrefix);
    const headers = objectHeaders(toResponse(found, config.idPrefix));
    headers['Current-Overwritten-Version'] = found.__rerum?.isOverwritten ?? '';
    const location = publicIdOf(obj);
    if (location) headers.Location = encodeURI(location);
    sendRead(req, res, obj, headers);
  };
}
