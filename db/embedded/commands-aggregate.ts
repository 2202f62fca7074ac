/**
 * The aggregate command: a leading $match is planned like find (index, $text scores), the rest of
 * the pipeline runs in mingo on copies; a final $out replaces its target collection, a final $merge
 * writes into one (merge-stage.ts). explain is refused.
 */
import { bsonTypeName, deepCopy, isPlainObject, letValues, runPipeline, withVariables, type Doc } from '../../mql';
import { collationOf, deadlineOf, num, refuseExprWithCollation, str } from './args';
import { fail } from './errors';
import { Slicer } from './slicer';
import type { Handler } from './command-context';
import { checkHint } from './planner';
import { isMetaTextScore, replaceMetaTextScore, TEXT_SCORE_FIELD } from './text-score';
import { applyMerge, applyOut, parseMerge, type MergeSpec } from './merge-stage';
import { listLocalSessions } from './sessions';
import type { Collection } from './collection';
import type { Storage } from './storage';

function rewriteStage(stage: Doc): Doc {
  const [op] = Object.keys(stage);
  if (op === '$sort' && isPlainObject(stage.$sort)) {
    const spec: Doc = {};
    for (const [k, v] of Object.entries(stage.$sort)) {
      if (isMetaTextScore(v)) spec[TEXT_SCORE_FIELD] = -1;
      else spec[k] = v;
    }
    return { $sort: spec };
  }
  if (op === '$match' && isPlainObject(stage.$match) && '$text' in stage.$match) {
    throw fail('Location17313', '$match with $text is only allowed as the first pipeline stage');
  }
  return replaceMetaTextScore(stage) as Doc;
}

/**
 * With a collation, only stages whose string comparisons it reaches ($match without $expr, $sort)
 * or that compare no strings are run; others are refused rather than run with binary comparison.
 * `$group` is accepted with a constant _id and counting/summing accumulators (the driver's
 * countDocuments sends `{$group: {_id: 1, n: {$sum: 1}}}`).
 */
function checkCollatedStages(stages: unknown[]): void {
  const plain = new Set(['$match', '$sort', '$skip', '$limit', '$count']);
  for (const s of stages) {
    if (!isPlainObject(s)) continue;
    const op = Object.keys(s)[0];
    if (op === '$match') refuseExprWithCollation(s.$match, {});
    if (plain.has(op)) continue;
    if (op === '$group' && isPlainObject(s.$group)) {
      const { _id, ...acc } = s.$group;
      const constantId = _id === null || typeof _id === 'number' || typeof _id === 'boolean';
      const counting = Object.values(acc).every((a) => isPlainObject(a) && Object.keys(a).length === 1 && ('$sum' in a || '$count' in a));
      if (constantId && counting) continue;
    }
    throw fail(
      'CommandNotSupported',
      `a collation with ${op} is not supported by the embedded server (with a collation it runs $match, $sort, $skip, $limit, $count and counting $group); use MongoDB for it`,
    );
  }
}

/** What one aggregate command's stages run with. */
interface Run {
  storage: Storage;
  db: string;
  slicer: Slicer;
  variables?: Doc;
  collation?: Doc;
}

/**
 * How many of a leading $match's documents (in natural order) the stages after it can use: the
 * `$skip`s and the `$limit` right after it bound that, as a find's skip and limit do; otherwise all.
 */
function matchesNeeded(rest: Doc[]): number {
  let skipped = 0;
  for (const stage of rest) {
    if (Object.keys(stage).length !== 1) break;
    const { $skip: skip, $limit: limit } = stage;
    if (Number.isSafeInteger(skip) && (skip as number) >= 0) skipped += skip as number;
    else if (Number.isSafeInteger(limit) && (limit as number) > 0) return skipped + (limit as number);
    else break;
  }
  return Infinity;
}

/**
 * The copies of `coll`'s documents a pipeline starts from, and its stages after that: a leading
 * $match is planned like find (index, `_id` lookup, $text with scores attached), otherwise every
 * document.
 */
async function startOn(run: Run, coll: Collection | undefined, stages: Doc[]): Promise<{ input: Doc[]; rest: Doc[]; scored: boolean }> {
  const first = stages[0];
  let docs: Doc[];
  let scores: Map<Doc, number> | undefined;
  let rest = stages;
  if (first && isPlainObject(first.$match)) {
    if (!coll && '$text' in first.$match) throw fail('IndexNotFound', 'text index required for $text query');
    const firstMatch = run.variables ? withVariables(first.$match, run.variables) : first.$match;
    rest = stages.slice(1);
    const needed = matchesNeeded(rest);
    const r = coll ? await coll.matchSliced(firstMatch, needed, run.slicer, run.collation) : { docs: [] as Doc[], scores: undefined };
    docs = r.docs;
    scores = r.scores;
  } else docs = coll ? [...coll.docs.values()] : [];
  const input: Doc[] = [];
  for (const d of docs) {
    const c = deepCopy(d);
    if (scores) c[TEXT_SCORE_FIELD] = scores.get(d) ?? 0;
    input.push(c);
    if (run.slicer.due()) await run.slicer.pause();
  }
  return { input, rest, scored: scores !== undefined };
}

function withoutScores(results: Doc[]): Doc[] {
  return results.map((r) => {
    if (!r || !(TEXT_SCORE_FIELD in r)) return r;
    const { [TEXT_SCORE_FIELD]: _s, ...rest } = r;
    void _s;
    return rest;
  });
}

/** `{$unionWith: 'name'}` or `{$unionWith: {coll, pipeline}}`; anything else is left to mingo (which refuses what it must). */
function unionOf(stage: Doc): { coll: string; pipeline: Doc[] } | undefined {
  if (Object.keys(stage).length !== 1 || !('$unionWith' in stage)) return undefined;
  const spec = stage.$unionWith;
  if (typeof spec === 'string' && spec) return { coll: spec, pipeline: [] };
  if (!isPlainObject(spec) || typeof spec.coll !== 'string' || !spec.coll) return undefined;
  if (Object.keys(spec).some((k) => k !== 'coll' && k !== 'pipeline')) return undefined;
  if (spec.pipeline === undefined) return { coll: spec.coll, pipeline: [] };
  if (!Array.isArray(spec.pipeline) || !spec.pipeline.every((s) => isPlainObject(s))) return undefined;
  if (spec.pipeline.some((s) => '$out' in s || '$merge' in s)) return undefined;
  return { coll: spec.coll, pipeline: spec.pipeline as Doc[] };
}

/**
 * Runs `stages` over `input` in mingo, except that a `$unionWith` of a collection appends that
 * collection's own pipeline, run like a command's (its leading $match planned, not a scan of copies
 * of every document).
 */
async function runStages(run: Run, input: Doc[], stages: Doc[]): Promise<Doc[]> {
  const inMingo = (docs: Doc[], part: Doc[]) => {
    if (part.length === 0) return docs;
    const resolver = (name: string): Doc[] => {
      const c = run.storage.getCollection(run.db, name);
      return c ? [...c.docs.values()].map(deepCopy) : [];
    };
    const out = runPipeline(
      docs,
      part.map((s) => (isPlainObject(s) ? rewriteStage(s) : s)),
      resolver,
      run.variables,
      run.collation,
    );
    run.slicer.check();
    return out;
  };
  let docs = input;
  let from = 0;
  for (let i = 0; i < stages.length; i++) {
    const union = isPlainObject(stages[i]) ? unionOf(stages[i]) : undefined;
    if (!union) continue;
    docs = inMingo(docs, stages.slice(from, i));
    const coll = run.storage.getCollection(run.db, union.coll);
    const start = await startOn(run, coll, union.pipeline);
    const added = await runStages(run, start.input, start.rest);
    docs = docs.concat(start.scored ? withoutScores(added) : added);
    from = i + 1;
  }
  return inMingo(docs, stages.slice(from));
}

export const aggregate: Handler = async (cmd, db, _seq, ctx) => {
  const { storage, cursors } = ctx;
  const slicer = new Slicer(deadlineOf(cmd));
  const pipeline = cmd.pipeline;
  if (!Array.isArray(pipeline)) throw fail('TypeMismatch', "'pipeline' option must be specified as an array");
  if (cmd.explain) throw fail('CommandNotSupported', 'explain is not supported by the embedded server');
  const collection = cmd.aggregate === 1 ? undefined : str(cmd.aggregate, 'aggregate');
  const ns = `${db}.${collection ?? '$cmd.aggregate'}`;
  let stages = pipeline as Doc[];
  let input: Doc[] = [];
  const coll = collection ? storage.getCollection(db, collection) : undefined;
  checkHint(coll, cmd.hint);
  const variables = isPlainObject(cmd.let) ? letValues(cmd.let) : undefined; // `let`: $$name in every stage
  const collation = collationOf(cmd);
  if (collation) checkCollatedStages(stages);
  const run: Run = { storage, db, slicer, variables, collation };
  const source = stages[0];
  let scored = false;
  if (isPlainObject(source) && '$listLocalSessions' in source) {
    input = listLocalSessions(source.$listLocalSessions, db, collection, cursors);
    stages = stages.slice(1);
  } else if (collection) {
    const start = await startOn(run, coll, stages);
    ({ input, scored } = start);
    stages = start.rest as Doc[];
  }
  let outTarget: { db: string; coll: string } | undefined;
  const last = stages[stages.length - 1];
  if (last && '$out' in last) {
    const o = last.$out;
    if (typeof o === 'string' && o) outTarget = { db, coll: o };
    else if (isPlainObject(o) && typeof o.coll === 'string' && o.coll && (o.db === undefined || (typeof o.db === 'string' && o.db))) {
      outTarget = { db: (o.db as string | undefined) ?? db, coll: o.coll };
    } else throw fail('Location16990', `$out only supports a string or object argument, but found ${bsonTypeName(o)}`);
    stages = stages.slice(0, -1);
  }
  let merge: MergeSpec | undefined;
  const lastStage = stages[stages.length - 1];
  if (!outTarget && isPlainObject(lastStage) && '$merge' in lastStage) {
    merge = parseMerge(lastStage.$merge, db);
    stages = stages.slice(0, -1);
  }
  const misplaced = stages.find((s) => isPlainObject(s) && ('$merge' in s || '$out' in s));
  if (misplaced) throw fail('Location40601', `${Object.keys(misplaced)[0]} can only be the final stage in the pipeline`);
  let results = await runStages(run, input, stages);
  if (scored) results = withoutScores(results);
  if (outTarget) {
    applyOut(storage, results, outTarget, cmd, ctx);
    results = [];
  }
  if (merge) {
    await applyMerge(storage, results, merge, slicer, cmd, ctx);
    results = [];
  }
  const batchSize = num(isPlainObject(cmd.cursor) ? cmd.cursor.batchSize : undefined);
  return cursors.open(ns, results, { batchSize });
};
