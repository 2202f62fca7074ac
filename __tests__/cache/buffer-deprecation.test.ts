/**
 * endBufferDeprecationChecks (pm2-transport.ts): after it, Node no longer checks `new Buffer()`
 * calls (the PM2 bus client makes three per message) and it prints nothing itself. Node's rule: its
 * DEP0005 check stops for good once the warning has been emitted, so a later call from outside
 * node_modules, which Node would otherwise warn about, shows whether the checks still run. Each
 * case runs in a fresh Node process (the state is per process); the function's compiled source is
 * what the child runs.
 */
import { spawnSync } from 'node:child_process';
import { endBufferDeprecationChecks } from '../../cache/pm2-transport';

function run(script: string): { stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`child failed (${String(r.status)}): ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

const LATER_CALL = `
process.on('warning', (w) => console.log('warning ' + (w.code ?? w.name)));
new Buffer(1);
`;

describe('endBufferDeprecationChecks', () => {
  it('leaves Node checking new Buffer() calls when not called (the control case)', () => {
    const r = run(LATER_CALL);
    expect(r.stdout).toContain('warning DEP0005');
  });

  it('ends the checks without printing anything', () => {
    const r = run(`(${endBufferDeprecationChecks.toString()})();\n${LATER_CALL}`);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');
  });

  it('keeps the process-wide deprecation setting as it was', () => {
    const r = run(`(${endBufferDeprecationChecks.toString()})();\nconsole.log(String(process.noDeprecation));`);
    expect(r.stdout.trim()).toBe('undefined');
  });
});
