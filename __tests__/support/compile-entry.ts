/**
 * Compiles one entry file of the embedded database (standalone server, repair command) with its
 * imports into a private folder under node_modules/.cache, so a test can run it as its own process
 * without depending on `npm run build`. Returns the folder, which holds `<entry>.js` (a link to the
 * compiled entry: the package imports mql/, so the output mirrors the repository layout); remove it
 * in afterAll.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '..', '..');

export function compileEmbeddedEntry(entry: 'standalone' | 'repair', label: string): string {
  const outDir = path.join(root, 'node_modules', '.cache', `${label}-${process.pid}`);
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const options = [
    '--module',
    'commonjs',
    '--target',
    'es2022',
    '--moduleResolution',
    'node',
    '--esModuleInterop',
    '--skipLibCheck',
    '--strict',
    '--types',
    'node',
  ];
  execFileSync(
    process.execPath,
    [tsc, '--outDir', outDir, '--rootDir', root, ...options, path.join(root, 'db', 'embedded', `${entry}.ts`)],
    {
      cwd: root,
      stdio: 'pipe',
    },
  );
  fs.symlinkSync(path.join('db', 'embedded', `${entry}.js`), path.join(outDir, `${entry}.js`));
  return outDir;
}
