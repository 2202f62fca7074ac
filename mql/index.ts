/**
 * MongoDB query-language semantics in one place: matching, BSON comparison and sort order, dotted
 * paths, numeric kinds and their arithmetic, deep copies, RE2 regular expressions, and the server's
 * named error codes. Used by the embedded database (db/embedded/) and the read cache's matcher
 * (cache/), so both decide alike what a filter selects. Imports nothing of the app — only bson,
 * mingo and re2js (eslint.config.mjs enforces it).
 *
 *   values.ts   Doc, isPlainObject, deepCopy, setField, BSON type names
 *   numbers.ts  int32 / int64 / double / Decimal128: comparison, keys, $inc/$sum/$avg arithmetic
 *   compare.ts  the BSON total order, sort keys, sortDocs
 *   paths.ts    dotted paths as mongod walks them
 *   query.ts    field-level query operators with mongod's semantics
 *   regex.ts    linear-time regular expressions (RE2)
 *   engine.ts   the mingo context: compileFilter, runPipeline, compileProjection, applyModifiers
 *   collation.ts  collations (locale, strength 1–3, …) on Intl.Collator
 *   codes.ts    named server error codes
 */
export { bsonType, bsonTypeName, deepCopy, isPlainObject, setField, TYPE_ALIASES, type Doc } from './values';
export { arithmetic, avgOf, compareNumbers, isNumeric, numericKey, numericKind, sumOf, toDouble, type NumericKind } from './numbers';
export { compareBson, sortDocs, sortKey, typeRank, type ScoreOf, type SortSpec } from './compare';
export { matchValues, MISSING, valuesAtPath } from './paths';
export { linearExec, linearRegex, linearTest } from './regex';
export {
  compileFilter,
  compileProjection,
  letValues,
  mingoOptions,
  applyModifiers,
  runPipeline,
  withVariables,
  type CollectionResolver,
} from './engine';
export { codeOf, hasCode, ServerCodes, type ServerCodeName } from './codes';
export { stringCompare, type StringCompare } from './collation';
