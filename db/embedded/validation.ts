/**
 * Collection validators, as mongod's schema validation: a `validator` made of query operators
 * (set by create or collMod) that inserted and updated documents must match. `validationLevel`
 * 'strict' (default) checks every insert and update, 'moderate' skips updates of documents that
 * did not match before, 'off' checks nothing; `validationAction` 'error' (default) refuses the
 * write with DocumentValidationFailure (121) and an `errInfo` naming the failing document and the
 * clauses it does not satisfy, 'warn' lets it through and logs the same. A command's
 * `bypassDocumentValidation: true` skips the check; deletes are never checked. `$jsonSchema` is
 * refused (115): there is no JSON Schema engine here that speaks MongoDB's dialect (bsonType, …).
 */
import { bsonTypeName, compileFilter, isPlainObject, valuesAtPath, type Doc } from '../../mql';
import type { Collection } from './collection';
import type { CommandContext } from './command-context';
import { fail } from './errors';
import { isOperatorObject } from './planner';

const LEVELS = ['off', 'strict', 'moderate'];
const ACTIONS = ['error', 'warn'];
/** Query features mongod does not allow in a validator. */
const BANNED = new Set(['$text', '$where', '$near', '$nearSphere', '$geoNear']);
const INTERNAL_DBS = new Set(['admin', 'local', 'config']);

/** Checks the validation options of create / collMod; returns the options they set (only those given). */
export function validationOptions(cmd: Doc, db: string, name: string): Doc {
  const out: Doc = {};
  if (cmd.validator !== undefined) {
    const v = cmd.validator;
    if (!isPlainObject(v))
      throw fail('TypeMismatch', `BSON field 'validator' is the wrong type '${bsonTypeName(v)}', expected type 'object'`);
    if (Object.keys(v).length) {
      if (INTERNAL_DBS.has(db))
        throw fail('InvalidOptions', `Document validators are not allowed on collection ${db}.${name} in the ${db} internal database`);
      if (name.startsWith('system.')) throw fail('InvalidOptions', `Document validators not allowed on system collection ${db}.${name}`);
      checkValidator(v);
    }
    out.validator = v;
  }
  if (cmd.validationLevel !== undefined) {
    if (!LEVELS.includes(cmd.validationLevel as string))
      throw fail('BadValue', `Enumeration value '${String(cmd.validationLevel)}' for field 'validationLevel' is not a valid value.`);
    out.validationLevel = cmd.validationLevel;
  }
  if (cmd.validationAction !== undefined) {
    if (!ACTIONS.includes(cmd.validationAction as string))
      throw fail('BadValue', `Enumeration value '${String(cmd.validationAction)}' for field 'validationAction' is not a valid value.`);
    out.validationAction = cmd.validationAction;
  }
  return out;
}

function checkValidator(v: Doc): void {
  const stack: unknown[] = [v];
  while (stack.length) {
    const x = stack.pop();
    if (Array.isArray(x)) stack.push(...x);
    else if (isPlainObject(x)) {
      for (const [k, sub] of Object.entries(x)) {
        if (k === '$jsonSchema')
          throw fail(
            'CommandNotSupported',
            '$jsonSchema validators are not supported by the embedded server; use query operators, or MongoDB',
          );
        if (BANNED.has(k)) throw fail('QueryFeatureNotAllowed', `${k} is not allowed in this context`);
        stack.push(sub);
      }
    }
  }
  compileFilter(v); // an unknown operator or a malformed clause is refused now, not at the first write
}

export interface DocumentValidator {
  /** Throws DocumentValidationFailure (or logs, with action 'warn') when `next` may not be written. `prev`: the document it replaces. */
  check(next: Doc, prev?: Doc): void;
}

const NONE: DocumentValidator = { check() {} };
const compiled = new WeakMap<Doc, (d: Doc) => boolean>();

/** The check a write command applies to one collection's documents. */
export function validatorFor(coll: Collection | undefined, cmd: Doc, ctx: CommandContext): DocumentValidator {
  const o = coll?.options;
  const validator = o?.validator;
  if (!coll || !isPlainObject(validator) || Object.keys(validator).length === 0) return NONE;
  if (o?.validationLevel === 'off' || cmd.bypassDocumentValidation === true) return NONE;
  let test = compiled.get(validator);
  if (!test) {
    test = compileFilter(validator);
    compiled.set(validator, test);
  }
  const moderate = o?.validationLevel === 'moderate';
  const warn = o?.validationAction === 'warn';
  return {
    check(next, prev) {
      if (test(next)) return;
      if (moderate && prev && !test(prev)) return; // moderate: a document already invalid may stay so
      const errInfo = { failingDocumentId: next._id, details: explain(validator, next) };
      if (warn) {
        ctx.logger?.warn({ namespace: coll.ns, document: next, errInfo }, 'Document would fail validation');
        return;
      }
      throw fail('DocumentValidationFailure', 'Document failed validation', { errInfo });
    },
  };
}

/**
 * Why a document fails a validator, in the shape of mongod's errInfo.details (operatorName,
 * specifiedAs, reason, consideredValue): the top-level clauses it does not satisfy, under an
 * implicit $and when the validator has several. Nested logical operators are described as a whole.
 */
function explain(validator: Doc, doc: Doc): Doc {
  const clauses = Object.entries(validator).map(([k, v]) => ({ [k]: v }) as Doc);
  const failing = clauses.map((c, index) => ({ index, c })).filter(({ c }) => !compileFilter(c)(doc));
  if (clauses.length === 1) return describe(clauses[0], doc);
  return {
    operatorName: '$and',
    clausesNotSatisfied: failing.map(({ index, c }) => ({ index, details: describe(c, doc) })),
  };
}

const REASONS: Record<string, string> = {
  $eq: 'comparison failed',
  $ne: 'comparison succeeded',
  $gt: 'comparison failed',
  $gte: 'comparison failed',
  $lt: 'comparison failed',
  $lte: 'comparison failed',
  $in: 'no matching value found in array',
  $nin: 'matching value found in array',
  $type: 'type did not match',
  $regex: 'regular expression did not match',
  $exists: 'path does not exist',
  $size: 'array length was not equal to given size',
  $all: 'array did not contain all specified values',
  $elemMatch: 'array did not satisfy the child predicate',
  $mod: 'mod did not match',
  $not: 'child expression matched',
  $expr: 'expression did not match',
};

function describe(clause: Doc, doc: Doc): Doc {
  const [key, spec] = Object.entries(clause)[0];
  if (key.startsWith('$')) {
    return key === '$expr'
      ? { operatorName: '$expr', specifiedAs: clause, reason: REASONS.$expr, expressionResult: false }
      : { operatorName: key, specifiedAs: clause };
  }
  const op = isOperatorObject(spec) ? Object.keys(spec)[0] : '$eq';
  const values = valuesAtPath(doc, key.split('.')).filter((v) => v !== undefined);
  const out: Doc = { operatorName: op, specifiedAs: clause };
  if (values.length === 0) {
    out.reason = op === '$exists' ? 'path does not exist' : 'field was missing';
    return out;
  }
  out.reason = op === '$exists' ? 'path does exist' : (REASONS[op] ?? 'condition not satisfied');
  const value = values.length === 1 ? values[0] : values;
  out.consideredValue = value;
  if (op === '$type') out.consideredType = bsonTypeName(value);
  return out;
}
