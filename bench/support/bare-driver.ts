/**
 * The floor for `npm run bench:compare`: a bare Express 5 app (default settings, express.json()) doing
 * the single driver call each route needs against the same database, through the same `mongodb`
 * driver with its default options — what any "Express + MongoDB" app pays at least:
 *   GET  /v1/id/:id      findOne({ _id })                         → the document without `_id`
 *   POST /v1/api/query   find(body).limit(100).toArray()          → the documents without `_id`
 *   POST /v1/api/create  insertOne(body + _id, @id)               → 201 with the document
 *   PUT  /v1/api/update  findOne(@id) + insertOne(new version) + updateOne(parent $addToSet next)
 *                        (the three round trips a tracked version needs; no checks)
 * No auth, no validation, no cache. BARE_WORKERS > 1 runs node:cluster workers on one port.
 * Environment: BARE_PORT, BARE_MONGO_URI, BARE_DB, BARE_COLLECTION, BARE_ID_PREFIX. Not part of the product.
 */
import { randomBytes } from 'node:crypto';
import express from 'express';
import { MongoClient, type Document } from 'mongodb';
import { ready, runBare } from './bare-cluster';

const port = Number(process.env.BARE_PORT);
const idPrefix = String(process.env.BARE_ID_PREFIX);

const strip = (d: Document) => {
  const { _id, ...rest } = d;
  void _id;
  return rest;
};

async function worker(): Promise<void> {
  const client = new MongoClient(String(process.env.BARE_MONGO_URI));
  await client.connect();
  const coll = client.db(String(process.env.BARE_DB)).collection<Document>(String(process.env.BARE_COLLECTION));
  const app = express();
  app.use(express.json());
  app.get('/v1/id/:id', async (req, res) => {
    const d = await coll.findOne({ _id: req.params.id as never });
    if (!d) return void res.status(404).json({ message: 'not found' });
    res.json(strip(d));
  });
  app.post('/v1/api/query', async (req, res) => {
    const docs = await coll
      .find(req.body as Document)
      .limit(100)
      .toArray();
    res.json(docs.map(strip));
  });
  app.post('/v1/api/create', async (req, res) => {
    const _id = randomBytes(12).toString('hex');
    const d: Document = { '@id': idPrefix + _id, ...(req.body as Document), _id };
    await coll.insertOne(d);
    res.status(201).json(strip(d));
  });
  app.put('/v1/api/update', async (req, res) => {
    const body = req.body as Document;
    const parent = await coll.findOne({ '@id': body['@id'] });
    if (!parent) return void res.status(404).json({ message: 'not found' });
    const _id = randomBytes(12).toString('hex');
    const d: Document = { ...body, '@id': idPrefix + _id, _id, __rerum: { history: { previous: parent['@id'], next: [] } } };
    await coll.insertOne(d);
    await coll.updateOne({ _id: parent._id }, { $addToSet: { '__rerum.history.next': d['@id'] } });
    res.json(strip(d));
  });
  app.listen(port, '127.0.0.1', ready);
}

runBare(worker);
