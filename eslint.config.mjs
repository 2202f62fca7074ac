// ESLint flat config: typescript-eslint's recommended rules, plus the layering as import boundaries.
//
//   routes → controllers → rerum / db;  the cache learns about writes from the object store (db/objects.ts)
//
// Boundaries (no-restricted-imports; each directory's block lists everything that applies to it,
// because a later flat-config block replaces an earlier block's options for the same rule):
//   rerum/        the RERUM rules: no HTTP (express, middleware/, controllers/, routes/), no db/, no cache/,
//                 no database driver (bson values are fine).
//   mql/          MongoDB query-language semantics (matching, comparison, paths, deep copy, server
//                 error codes), shared by the cache and the embedded database: imports nothing of the
//                 app (no db/, cache/, rerum/, HTTP), only bson, mingo and re2js. Everyone else uses
//                 it through its entry (mql/index.ts).
//   cache/        no db/ and no database driver: the cache hears about writes from the store; its
//                 matcher uses mql/.
//   controllers/  no cache/; no driver handles (Collection, Db, MongoClient): writes go through db/objects.ts.
//   db/embedded/  a self-contained package: imports nothing outside its folder but mql/; its only entry is
//                 db/embedded/index.ts and its only importer in the app is db/select.ts (tests and
//                 benches may start it through the entry, never reach past it).
// __tests__/lint/boundaries.test.ts shows each rule refusing a deliberately wrong import.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const HTTP = {
  regex: '^express$|^express-|(^|/)(middleware|controllers|routes)(/|$)',
  message: 'rerum/ holds the RERUM rules without HTTP: throw a DomainError (rerum/errors.ts), the HTTP layer gives it a status.',
};
const DB_FROM_RERUM = {
  regex: '^mongodb$|^mongodb/|(^|/)db(/|$)',
  message: 'rerum/ does not know the database: db/ calls rerum/, not the other way.',
};
const CACHE_FROM_RERUM = { regex: '(^|/)cache(/|$)', message: 'rerum/ does not know the cache.' };
const DB_FROM_CACHE = {
  regex: '^mongodb$|^mongodb/|^\\.\\./db(/|$)',
  message: 'cache/ does not import db/: it learns about writes from the object store (ObjectChange in types/contracts.ts).',
};
const CACHE_FROM_CONTROLLERS = {
  regex: '(^|/)cache(/|$)',
  message: 'controllers/ do not talk to the cache: the object store reports every write to it.',
};
/** Anything in the embedded database package, entry included. */
const EMBEDDED_ANY = { regex: '(^|/)db/embedded(/|$)', message: 'Only db/select.ts starts the embedded database (db/embedded/index.ts).' };
/** Past the embedded package's entry. */
const EMBEDDED_DEEP = {
  regex: '(^|/)db/embedded/.',
  message: 'Use the embedded database through its entry (db/embedded, i.e. db/embedded/index.ts) only.',
};
/** From db/*.ts: the embedded package, written relative to db/. */
const EMBEDDED_FROM_DB = { regex: '^\\./embedded(/|$)', message: 'Only db/select.ts starts the embedded database (db/embedded/index.ts).' };
const OUT_OF_EMBEDDED = {
  regex: '^\\.\\./(?!\\.\\./mql$)',
  message: 'db/embedded/ is a self-contained package: it imports nothing outside its folder but the MongoDB semantics (mql/).',
};
/** From mql/: anything of the app, or a database driver / HTTP framework. */
const OUT_OF_MQL = {
  regex: '^\\.\\./|^mongodb$|^mongodb/|^express$|^express-',
  message: 'mql/ holds MongoDB semantics only: it imports nothing of the app (no db/, cache/, rerum/, HTTP), only bson, mingo and re2js.',
};
/** Past mql/'s entry. */
const MQL_DEEP = { regex: '(^|/)mql/.', message: 'Use the MongoDB semantics through their entry (mql, i.e. mql/index.ts).' };
const DRIVER_HANDLES = {
  name: 'mongodb',
  importNames: ['Collection', 'Db', 'MongoClient', 'ClientSession'],
  message: 'Controllers read and write through the ObjectStore (db/objects.ts), never a driver handle.',
};

const restrict = (patterns, paths = []) => ['error', { patterns, paths }];

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'public/', 'coverage/', 'data/', '**/data/', '.pm2/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2022, sourceType: 'module', globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Arguments and destructured fields kept for a signature's shape start with `_`.
      // A `let` assigned once after a closure that reads it (a timer its own callback clears) stays a `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    files: ['**/*.cjs', 'jest.config.js'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  { files: ['__tests__/**/*.ts'], languageOptions: { globals: { ...globals.jest } } },

  // ---- import boundaries ----
  // Everywhere by default: no embedded database.
  { files: ['**/*.ts'], rules: { 'no-restricted-imports': restrict([EMBEDDED_ANY, MQL_DEEP]) } },
  {
    files: ['rerum/**/*.ts'],
    rules: { 'no-restricted-imports': restrict([HTTP, DB_FROM_RERUM, CACHE_FROM_RERUM, EMBEDDED_ANY, MQL_DEEP]) },
  },
  { files: ['cache/**/*.ts'], rules: { 'no-restricted-imports': restrict([DB_FROM_CACHE, EMBEDDED_ANY, MQL_DEEP]) } },
  {
    files: ['controllers/**/*.ts'],
    rules: { 'no-restricted-imports': restrict([CACHE_FROM_CONTROLLERS, EMBEDDED_ANY, MQL_DEEP], [DRIVER_HANDLES]) },
  },
  { files: ['db/*.ts'], ignores: ['db/select.ts'], rules: { 'no-restricted-imports': restrict([EMBEDDED_FROM_DB, MQL_DEEP]) } },
  { files: ['db/select.ts'], rules: { 'no-restricted-imports': 'off' } },
  { files: ['db/embedded/**/*.ts'], rules: { 'no-restricted-imports': restrict([OUT_OF_EMBEDDED]) } },
  { files: ['mql/**/*.ts'], rules: { 'no-restricted-imports': restrict([OUT_OF_MQL]) } },
  { files: ['__tests__/**/*.ts', 'bench/**/*.ts'], rules: { 'no-restricted-imports': restrict([EMBEDDED_DEEP, MQL_DEEP]) } },
);
