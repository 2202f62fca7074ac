/** Jest runs TypeScript through ts-jest. One database (chosen by db/select.ts) is started
 * for the whole run in globalSetup; each test file uses its own database name on it. */
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': 'ts-jest' },
  testMatch: ['**/__tests__/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  globalSetup: '<rootDir>/__tests__/support/global-setup.ts',
  globalTeardown: '<rootDir>/__tests__/support/global-teardown.ts',
  testTimeout: 30000,
  maxWorkers: 2,
};
