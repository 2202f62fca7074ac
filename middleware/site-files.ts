/**
 * The site's static files (public/: pages, stylesheets, favicon, context.json), served only for the
 * paths that name one of them. The list is read once at start-up, so an API request never costs a
 * filesystem look-up (express.static alone would stat `public/<path>` for every request it sees).
 */
import fs from 'node:fs';
import path from 'node:path';
import express, { type RequestHandler } from 'express';

function filesUnder(dir: string, prefix = ''): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) =>
    e.isDirectory() ? filesUnder(path.join(dir, e.name), `${prefix}/${e.name}`) : e.isFile() ? [`${prefix}/${e.name}`] : [],
  );
}

export function siteFiles(dir: string): RequestHandler {
  const files = new Set(filesUnder(dir));
  if (files.has('/index.html')) files.add('/');
  const serve = express.static(dir);
  return (req, res, next) => ((req.method === 'GET' || req.method === 'HEAD') && files.has(req.path) ? serve(req, res, next) : next());
}
