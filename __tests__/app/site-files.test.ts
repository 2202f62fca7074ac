/** The site's files are served by name; API requests cost no filesystem look-up. */
import fs from 'node:fs';
import request from 'supertest';
import { startHarness, type Harness } from '../routes/helpers';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.srv.close();
});

test('GET /v1/id, a query and an unknown path stat no file; the site files are still served', async () => {
  const created = await h.create({ n: 1 });
  const stat = jest.spyOn(fs, 'stat');
  try {
    expect((await h.get(`/v1/id/${h.seg(created)}`)).status).toBe(200);
    expect((await request(h.srv.app).post('/v1/api/query').send({ n: 1 })).status).toBe(200);
    expect((await h.get('/v1/nothing-here.html')).status).toBe(404);
    expect(stat).not.toHaveBeenCalled();
  } finally {
    stat.mockRestore();
  }
  for (const path of ['/', '/v1/', '/v1/API.html', '/v1/context.json', '/favicon.ico']) {
    expect({ path, status: (await h.get(path)).status }).toEqual({ path, status: 200 });
  }
});
