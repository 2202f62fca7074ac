/**
 * Test helper: a real `mongodb` MongoClient on the database chosen by jest's global setup
 * (MONGO_TEST_URI), with a unique database name per call so test files never collide.
 */
import { randomBytes } from 'node:crypto';
import { MongoClient, type Db } from 'mongodb';

export interface TestDb {
  client: MongoClient;
  db: Db;
  /** Drops the database and closes the client. */
  close(): Promise<void>;
}

export function testDbName(prefix: string): string {
  const clean = prefix.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 30);
  return `t_${clean}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export async function testDb(prefix: string): Promise<TestDb> {
  const uri = process.env.MONGO_TEST_URI;
  if (!uri) throw new Error('MONGO_TEST_URI is not set: run the tests through jest (its global setup starts the database)');
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5000 });
  await client.connect();
  const db = client.db(testDbName(prefix));
  return {
    client,
    db,
    async close() {
      try {
        await db.dropDatabase();
      } finally {
        await client.close();
      }
    },
  };
}
