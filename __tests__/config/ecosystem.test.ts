/**
 * ecosystem.config.cjs: PM2 must give a stopping worker at least the time the worker itself allows for
 * draining (SHUTDOWN_TIMEOUT_MS), or a reload SIGKILLs workers with requests still in flight.
 */
import path from 'path';

interface PmApp {
  name: string;
  exec_mode: string;
  kill_timeout: number;
}

function loadApps(env: Record<string, string>): PmApp[] {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    let apps: PmApp[] = [];
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- PM2 reads this file with require(); so does the test
      apps = (require(path.join(__dirname, '../../ecosystem.config.cjs')) as { apps: PmApp[] }).apps;
    });
    return apps;
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

const worker = (apps: PmApp[]) => apps.find((a) => a.exec_mode === 'cluster')!;

describe('ecosystem.config.cjs', () => {
  test('PM2 waits longer than the default drain before killing a worker', () => {
    expect(worker(loadApps({ SHUTDOWN_TIMEOUT_MS: '' })).kill_timeout).toBeGreaterThan(15_000);
  });

  test('PM2 follows SHUTDOWN_TIMEOUT_MS', () => {
    expect(worker(loadApps({ SHUTDOWN_TIMEOUT_MS: '40000' })).kill_timeout).toBeGreaterThan(40_000);
    expect(worker(loadApps({ SHUTDOWN_TIMEOUT_MS: '2000' })).kill_timeout).toBeLessThan(15_000);
  });
});
