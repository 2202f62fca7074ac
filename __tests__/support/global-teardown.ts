/** jest globalTeardown: stops the database started by global-setup.ts (no-op for a plain URI). */
import type { SelectedDatabase } from '../../db/select';

export default async function globalTeardown(): Promise<void> {
  const g = globalThis as { __RERUM_TEST_DB__?: SelectedDatabase };
  const db = g.__RERUM_TEST_DB__;
  if (db) {
    await db.stop();
    g.__RERUM_TEST_DB__ = undefined;
  }
}
