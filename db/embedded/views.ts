/**
 * Read-only views, as mongod keeps them: a view is a document `{_id: 'db.name', viewOn, pipeline}`
 * in the database's `system.views` collection (so it persists like any data), and reads of a view
 * run its pipeline (resolved through views on views) on the source collection: find, count and
 * distinct become an aggregation, aggregate gets the view's pipeline in front. Writes and index
 * commands on a view are refused with CommandNotSupportedOnView (166); drop removes the view,
 * collMod changes its viewOn/pipeline. Called by the dispatcher (commands.ts) before the handlers.
 */
import { compareBson, isPlainObject, valuesAtPath, deepCopy, type Doc } from '../../mql';
import { fail } from './errors';
import type { CommandContext } from './command-context';
import { aggregate } from './commands-aggregate';
import { CursorManager } from './cursors';
import type { Storage } from './storage';
import { valueKey } from './value-key';

export const VIEWS_COLLECTION = 'system.views';
const MAX_VIEW_DEPTH = 20;

interface View {
  viewOn: string;
  pipeline: Doc[];
}

export function viewOf(storage: Storage, db: string, name: string): View | undefined {
  const d = storage.getCollection(db, VIEWS_COLLECTION)?.getById(`${db}.${name}`);
  return d ? { viewOn: String(d.viewOn), pipeline: (d.pipeline as Doc[]) ?? [] } : undefined;
}

/** All views of a database, for listCollections. */
export function viewsIn(storage: Storage, db: string): Doc[] {
  const c = storage.getCollection(db, VIEWS_COLLECTION);
  return c
    ? [...c.docs.values()].map((d) => ({ name: String(d._id).slice(db.length + 1), viewOn: d.viewOn, pipeline: deepCopy(d.pipeline) }))
    : [];
}

function checkDefinition(viewOn: unknown, pipeline: unknown): Doc[] {
  if (typeof viewOn !== 'string' || !viewOn) throw fail('TypeMismatch', "BSON field 'viewOn' must be a non-empty string");
  if (pipeline !== undefined && !Array.isArray(pipeline))
    throw fail('TypeMismatch', "BSON field 'pipeline' is the wrong type, expected type 'array'");
  const stages = (pipeline ?? []) as Doc[];
  for (const s of stages) {
    if (!isPlainObject(s)) throw fail('TypeMismatch', 'Each element of the view pipeline must be an object');
    if ('$out' in s || '$merge' in s) throw fail('OptionNotSupportedOnView', `${Object.keys(s)[0]} cannot be used in a view definition`);
  }
  return stages;
}

export function createView(storage: Storage, db: string, name: string, viewOn: unknown, pipeline: unknown): Doc {
  const stages = checkDefinition(viewOn, pipeline);
  if (storage.getCollection(db, name) || viewOf(storage, db, name)) throw fail('NamespaceExists', `Namespace ${db}.${name} already exists`);
  storage.collection(db, VIEWS_COLLECTION).insert({ _id: `${db}.${name}`, viewOn, pipeline: stages });
  return { ok: 1 };
}

/** The source collection and the whole pipeline of a view (views on views resolved). */
function resolve(storage: Storage, db: string, view: View): { source: string; pipeline: Doc[] } {
  let pipeline = view.pipeline;
  let source = view.viewOn;
  for (let depth = 0; ; depth++) {
    const inner = viewOf(storage, db, source);
    if (!inner) return { source, pipeline: deepCopy(pipeline) };
    if (depth >= MAX_VIEW_DEPTH)
      throw fail('ViewDepthLimitExceeded', `View depth too deep or view cycle detected; maximum depth is ${MAX_VIEW_DEPTH}`);
    pipeline = [...inner.pipeline, ...pipeline];
    source = inner.viewOn;
  }
}

const WRITES = new Set(['insert', 'update', 'delete', 'findandmodify', 'createindexes', 'dropindexes', 'renamecollection']);
const GENERIC = ['maxTimeMS', 'comment', '$db', 'lsid'];

/** Runs an aggregation on behalf of a view command with a private cursor manager; all results. */
async function allResults(cmd: Doc, db: string, ctx: CommandContext): Promise<Doc[]> {
  const cursors = new CursorManager();
  const reply = await aggregate({ ...cmd, cursor: {} }, db, {}, { ...ctx, cursors });
  const cursor = reply.cursor as Doc;
  const out = [...(cursor.firstBatch as Doc[])];
  let id = cursor.id;
  while (String(id) !== '0') {
    const more = cursors.getMore(id, undefined)!;
    out.push(...((more.cursor as Doc).nextBatch as Doc[]));
    id = (more.cursor as Doc).id;
  }
  return out;
}

/**
 * The reply of a command on a view, or undefined when the command does not name a view (the
 * ordinary handler runs then).
 */
export async function viewCommand(name: string, cmd: Doc, db: string, ctx: CommandContext): Promise<Doc | undefined> {
  const target = name === 'findandmodify' ? (cmd.findAndModify ?? cmd.findandmodify) : cmd[Object.keys(cmd)[0]];
  if (typeof target !== 'string' || name === 'create') return undefined;
  const { storage } = ctx;
  if (name === 'renamecollection') return undefined;
  const view = viewOf(storage, db, target);
  if (!view) return undefined;
  const ns = `${db}.${target}`;
  if (WRITES.has(name)) throw fail('CommandNotSupportedOnView', `Namespace ${ns} is a view, not a collection`);
  if (name === 'drop') {
    storage.getCollection(db, VIEWS_COLLECTION)!.remove(storage.getCollection(db, VIEWS_COLLECTION)!.getById(ns)!);
    return { ns, ok: 1 };
  }
  if (name === 'collmod') {
    for (const k of Object.keys(cmd))
      if (k !== 'collMod' && k !== 'viewOn' && k !== 'pipeline' && !GENERIC.includes(k) && k !== 'writeConcern' && !k.startsWith('$'))
        throw fail('InvalidOptions', `option not supported on a view: ${k}`);
    const viewOn = cmd.viewOn ?? view.viewOn;
    const stages = checkDefinition(viewOn, cmd.pipeline ?? view.pipeline);
    const views = storage.getCollection(db, VIEWS_COLLECTION)!;
    views.replace(views.getById(ns)!, { _id: ns, viewOn, pipeline: stages });
    return { ok: 1 };
  }
  const { source, pipeline } = resolve(storage, db, view);
  const generic: Doc = {};
  for (const k of GENERIC) if (cmd[k] !== undefined) generic[k] = cmd[k];
  const match = (q: unknown): Doc[] => (isPlainObject(q) && Object.keys(q).length ? [{ $match: q }] : []);
  if (name === 'aggregate') {
    const reply = await aggregate({ ...cmd, aggregate: source, pipeline: [...pipeline, ...((cmd.pipeline as Doc[]) ?? [])] }, db, {}, ctx);
    if (isPlainObject(reply.cursor)) reply.cursor.ns = ns;
    return reply;
  }
  if (name === 'find') {
    const p = [...pipeline, ...match(cmd.filter)];
    if (isPlainObject(cmd.sort) && Object.keys(cmd.sort).length) p.push({ $sort: cmd.sort });
    if (Number(cmd.skip ?? 0) > 0) p.push({ $skip: Number(cmd.skip) });
    const limit = Math.abs(Number(cmd.limit ?? 0));
    if (limit) p.push({ $limit: limit });
    if (isPlainObject(cmd.projection) && Object.keys(cmd.projection).length) p.push({ $project: cmd.projection });
    const batchSize = cmd.batchSize ?? (limit || undefined);
    const reply = await aggregate(
      { aggregate: source, pipeline: p, cursor: batchSize !== undefined ? { batchSize } : {}, ...generic },
      db,
      {},
      ctx,
    );
    if (isPlainObject(reply.cursor)) reply.cursor.ns = ns;
    return reply;
  }
  if (name === 'count') {
    const p = [...pipeline, ...match(cmd.query)];
    if (Number(cmd.skip ?? 0) > 0) p.push({ $skip: Number(cmd.skip) });
    if (Math.abs(Number(cmd.limit ?? 0))) p.push({ $limit: Math.abs(Number(cmd.limit)) });
    p.push({ $count: 'n' });
    const [r] = await allResults({ aggregate: source, pipeline: p, ...generic }, db, ctx);
    return { n: r?.n ?? 0, ok: 1 };
  }
  if (name === 'distinct') {
    const docs = await allResults({ aggregate: source, pipeline: [...pipeline, ...match(cmd.query)], ...generic }, db, ctx);
    const seen = new Set<string>();
    const values: unknown[] = [];
    for (const d of docs)
      for (const v of valuesAtPath(d, String(cmd.key).split('.')))
        for (const x of Array.isArray(v) ? v : [v]) {
          if (x === undefined || seen.has(valueKey(x))) continue;
          seen.add(valueKey(x));
          values.push(x);
        }
    return { values: values.sort(compareBson), ok: 1 };
  }
  if (name === 'listindexes') throw fail('CommandNotSupportedOnView', `Namespace ${ns} is a view, not a collection`);
  return undefined;
}
