/** Reads: GET /v1/id/:_id, POST /v1/api/query, GET /v1/history/:_id, GET /v1/since/:_id. */
import type { Request, RequestHandler } from 'express';
import type { Filter } from 'mongodb';
import { badRequest, notFound } from '../middleware/http-error';
import { jsonPropertiesOf } from '../middleware/json-depth';
import { hasCode, type ServerCodeName } from '../mql';
import { sendRepresentation } from '../middleware/representation';
import { toResponse } from '../rerum/document';
import { isDeleted } from '../rerum/metadata';
import { ancestorsOf, descendantsOf } from '../rerum/tree';
import type { RerumDocument } from '../types/rerum';
import { admitQuery, admitQuerySize, queryTimedOut, type QueryLimits } from './admission';
import type { Kit } from './kit';
import { idRepresentation, limitSkip, sendList } from './respond';

/** GET (and HEAD) /v1/id/:_id, by `_id` or slug. A deleted object is 404 (see the README). */
export function idHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const id = String(req.params._id);
    const found = await kit.store.findBySegment(id);
    if (!found) throw notFound(`No RERUM object with id '${id}'`);
    if (isDeleted(found)) throw notFound(`The RERUM object with id '${id}' has been deleted.`);
    sendRepresentation(req, res, idRepresentation(found, config));
  };
}

/** Database errors caused by the client's filter (bad operators, bad regex …) are 400s. */
const CLIENT_QUERY_ERRORS: ServerCodeName[] = [
  'BadValue',
  'FailedToParse',
  'Location17287',
  'Location51091', // invalid regular expression
  'Location16810',
  'Location16020',
  'Location31253',
];
function asClientError(err: unknown): never {
  if (hasCode(err, ...CLIENT_QUERY_ERRORS)) {
    throw badRequest(`The query could not be run: ${(err as { message?: string }).message ?? 'invalid query'}`);
  }
  throw err;
}

/** The client's filter, exactly as sent, with deleted objects left out; 400 for one over the admission limits. */
function liveOnly(filter: Record<string, unknown>, limits: QueryLimits): Filter<RerumDocument> {
  admitQuery(filter, limits);
  return { $and: [filter, { __deleted: { $exists: false } }] } as Filter<RerumDocument>;
}

/**
 * The page of live objects the query in the body selects; `?limit=` (100) and `?skip=` (0).
 * `{}` is refused on POST (as the reference); HEAD may have no body or `{}`, which matches everything.
 */
async function runQuery(kit: Kit, req: Request, allowEmpty = false): Promise<RerumDocument[]> {
  admitQuerySize(jsonPropertiesOf(req), kit.deps.config); // before anything enumerates a huge body
  const filter = kit.bodyOf(req);
  if (typeof filter !== 'object' || Array.isArray(filter) || (!allowEmpty && Object.keys(filter).length === 0)) {
    throw badRequest('Detected empty JSON object.  You must provide at least one property in the /query request body JSON.');
  }
  const { limit, skip } = limitSkip(req, kit.deps.config);
  const { config } = kit.deps;
  const live = liveOnly(filter, config);
  try {
    return await kit.store.find(live, { skip, limit, maxTimeMS: config.queryMaxTimeMs });
  } catch (err) {
    throw queryTimedOut(err, config) ?? asClientError(err);
  }
}

/** POST /v1/api/query: objects matching the JSON filter in the body. */
export function queryHandler(kit: Kit): RequestHandler {
  return async (req, res) => {
    sendList(req, res, kit.deps.config, await runQuery(kit, req));
  };
}

/** HEAD /v1/api/query: the size the POST answer (same limit and skip) would have; 404 when nothing matches. */
export function queryHeadHandler(kit: Kit): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const matches = await runQuery(kit, req, true);
    if (!matches.length) throw notFound('There are no objects in the database matching the query. Check the request body.');
    const size = Buffer.byteLength(JSON.stringify(matches.map((m) => toResponse(m, config.idPrefix))));
    res.set('Content-Type', 'application/json; charset=utf-8').set('Content-Length', String(size)).status(200).end();
  };
}

type TreeWalk = (versions: RerumDocument[], key: RerumDocument) => RerumDocument[];

function treeHandler(kit: Kit, walk: TreeWalk): RequestHandler {
  const { config } = kit.deps;
  return async (req, res) => {
    const id = String(req.params._id);
    const found = await kit.store.findBySegment(id);
    if (!found) throw notFound(`Cannot produce a history. There is no object in the database with id '${id}'.  Check the URL.`);
    if (isDeleted(found)) {
      sendList(req, res, config, []);
      return;
    }
    sendList(req, res, config, walk(await kit.store.versionsOf(found), found));
  };
}

/** GET /v1/history/:_id: every version upstream, nearest first, to the root. */
export const historyHandler = (kit: Kit) => treeHandler(kit, ancestorsOf);
/** GET /v1/since/:_id: every version downstream. */
export const sinceHandler = (kit: Kit) => treeHandler(kit, descendantsOf);
