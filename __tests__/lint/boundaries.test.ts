/**
 * The layering rules in eslint.config.mjs, run by the real ESLint engine (the project's config) on
 * deliberately wrong imports, each linted as if it were a file in the directory the rule guards:
 * each must be refused, and the same kind of import where it is allowed must pass. A rule that
 * stopped matching fails here (checked by dropping rerum/'s cache rule: the cache probe passed).
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

interface Probe {
  file: string;
  source: string;
}

/**
 * The no-restricted-imports messages ESLint reports for each probe's source as if it were that file:
 * one ESLint process (the real CLI's engine and config) for all of them.
 */
function restricted(probes: Probe[]): string[][] {
  const script = `
    const { ESLint } = require('eslint');
    (async () => {
      const eslint = new ESLint({ cwd: process.cwd() });
      const probes = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
      const out = [];
      for (const p of probes) {
        const [r] = await eslint.lintText(p.source, { filePath: p.file });
        out.push(r.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message));
      }
      process.stdout.write(JSON.stringify(out));
    })().catch((e) => { console.error(e); process.exit(2); });`;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, input: JSON.stringify(probes), encoding: 'utf8', timeout: 120_000 });
  if (r.error || r.status !== 0) throw new Error(`eslint failed (${r.status}): ${r.error ?? r.stderr}`);
  return JSON.parse(r.stdout) as string[][];
}

const use = (name: string) => `\nexport const used = ${name};\n`;

const REFUSED: Array<[string, string, RegExp]> = [
  ['rerum/probe.ts', "import { HttpError } from '../middleware/http-error';" + use('HttpError'), /without HTTP/],
  ['rerum/probe.ts', "import express from 'express';" + use('express'), /without HTTP/],
  ['rerum/probe.ts', "import { ObjectStore } from '../db/objects';" + use('ObjectStore'), /does not know the database/],
  ['rerum/probe.ts', "import { MongoClient } from 'mongodb';" + use('MongoClient'), /does not know the database/],
  ['rerum/probe.ts', "import { idKey } from '../cache/keys';" + use('idKey'), /does not know the cache/],
  ['cache/probe.ts', "import { ensureIndexes } from '../db/indexes';" + use('ensureIndexes'), /cache\/ does not import db\//],
  ['cache/probe.ts', "import { Storage } from '../db/embedded/storage';" + use('Storage'), /cache\/ does not import db\//],
  ['cache/matcher.ts', "import { ObjectStore } from '../db/objects';" + use('ObjectStore'), /cache\/ does not import db\//],
  ['cache/probe.ts', "import { compileFilter } from '../mql/engine';" + use('compileFilter'), /through their entry/],
  ['mql/probe.ts', "import { ObjectStore } from '../db/objects';" + use('ObjectStore'), /imports nothing of the app/],
  ['mql/probe.ts', "import { idKey } from '../cache/keys';" + use('idKey'), /imports nothing of the app/],
  ['mql/probe.ts', "import { segmentOf } from '../rerum/ids';" + use('segmentOf'), /imports nothing of the app/],
  ['mql/probe.ts', "import { HttpError } from '../middleware/http-error';" + use('HttpError'), /imports nothing of the app/],
  ['mql/probe.ts', "import { MongoClient } from 'mongodb';" + use('MongoClient'), /imports nothing of the app/],
  ['db/embedded/probe.ts', "import { compileFilter } from '../../mql/engine';" + use('compileFilter'), /self-contained/],
  ['controllers/probe.ts', "import type { Collection } from 'mongodb';\nexport type C = Collection;\n", /ObjectStore/],
  ['controllers/probe.ts', "import { createReadCache } from '../cache';" + use('createReadCache'), /do not talk to the cache/],
  ['app-probe.ts', "import { startEmbeddedMongo } from './db/embedded';" + use('startEmbeddedMongo'), /Only db\/select.ts/],
  ['db/probe.ts', "import { startEmbeddedMongo } from './embedded';" + use('startEmbeddedMongo'), /Only db\/select.ts/],
  ['__tests__/probe.test.ts', "import { Storage } from '../db/embedded/storage';" + use('Storage'), /through its entry/],
  ['db/embedded/probe.ts', "import { loadConfig } from '../../config';" + use('loadConfig'), /self-contained/],
];

const ALLOWED: Array<[string, string]> = [
  ['rerum/probe.ts', "import { ObjectId } from 'bson';" + use('ObjectId')],
  ['cache/probe.ts', "import type { Request } from 'express';\nexport type R = Request;\n"],
  ['cache/matcher.ts', "import { compileFilter } from '../mql';" + use('compileFilter')],
  ['db/embedded/probe.ts', "import { compileFilter } from '../../mql';" + use('compileFilter')],
  ['mql/probe.ts', "import { Decimal128 } from 'bson';\nimport { Query } from 'mingo';" + use('[Decimal128, Query]')],
  ['controllers/probe.ts', "import { hasCode } from '../mql';" + use('hasCode')],
  ['controllers/probe.ts', "import type { Filter } from 'mongodb';\nexport type F = Filter<object>;\n"],
  ['db/select.ts', "import { startEmbeddedMongo } from './embedded';" + use('startEmbeddedMongo')],
  ['__tests__/probe.test.ts', "import { startEmbeddedMongo } from '../db/embedded';" + use('startEmbeddedMongo')],
  ['db/embedded/probe.ts', "import { BSON } from 'bson';" + use('BSON')],
];

test('each boundary refuses a deliberately wrong import, and allows the same kind of import where it belongs', () => {
  const results = restricted([...REFUSED, ...ALLOWED].map(([file, source]) => ({ file, source })));
  const refused = REFUSED.map(([file, source, why], i) => ({
    file,
    source: source.split('\n')[0],
    refused: results[i].some((m) => why.test(m)),
  }));
  const allowed = ALLOWED.map(([file, source], i) => ({ file, source: source.split('\n')[0], messages: results[REFUSED.length + i] }));
  expect(refused.filter((r) => !r.refused)).toEqual([]);
  expect(allowed.filter((a) => a.messages.length > 0)).toEqual([]);
});
