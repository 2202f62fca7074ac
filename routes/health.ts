/** `GET /health` and `GET /v1/health`: 200 when the database answers a ping, else 503. */
import { Router } from 'express';
import type { AppDeps } from '../types/contracts';

export function healthRouter(deps: AppDeps): Router {
  const router = Router();
  const started = Date.now();
  router.get(['/health', '/v1/health'], async (_req, res) => {
    const body = {
      status: 'ok',
      database: 'ok',
      down: deps.config.down,
      readonly: deps.config.readonly,
      uptimeSeconds: Math.round((Date.now() - started) / 1000),
    };
    try {
      await deps.pingDatabase();
    } catch (err) {
      deps.logger.warn({ err }, 'health: database ping failed');
      res.status(503).json({ ...body, status: 'unavailable', database: 'unreachable' });
      return;
    }
    res.status(deps.config.down ? 503 : 200).json(deps.config.down ? { ...body, status: 'down' } : body);
  });
  return router;
}
