/**
 * The yardstick for `npm run bench:http`: a bare Express 5 app with default settings answering
 * GET /v1/id/:id with one fixed body from memory (the bytes and headers the real server sent for
 * the benchmarked object). Express computes its own ETag and answers If-None-Match with 304, as any
 * plain Express app does. With BARE_QUERY_BODY_FILE it also answers POST /v1/api/query (after
 * express.json() parses the request body) with those bytes and BARE_QUERY_HEADERS (bench:compare).
 * BARE_WORKERS > 1 runs that many node:cluster workers on one port.
 * Not part of the product.
 */
import fs from 'node:fs';
import express from 'express';
import { ready, runBare } from './bare-cluster';

const port = Number(process.env.BARE_PORT);

runBare(() => {
  const body = fs.readFileSync(String(process.env.BARE_BODY_FILE));
  const headers = JSON.parse(String(process.env.BARE_HEADERS ?? '{}')) as Record<string, string>;
  const app = express();
  app.get('/v1/id/:id', (_req, res) => {
    res.set(headers).send(body);
  });
  if (process.env.BARE_QUERY_BODY_FILE) {
    const queryBody = fs.readFileSync(process.env.BARE_QUERY_BODY_FILE);
    const queryHeaders = JSON.parse(String(process.env.BARE_QUERY_HEADERS ?? '{}')) as Record<string, string>;
    app.post('/v1/api/query', express.json(), (_req, res) => {
      res.set(queryHeaders).send(queryBody);
    });
  }
  app.listen(port, '127.0.0.1', ready);
});
