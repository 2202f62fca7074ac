/**
 * The local issuer's RSA signing key, kept in `${dataDir}/issuer-key.json` (mode 0600) so tokens
 * survive restarts and every PM2 worker (and `npm run token`) uses the same key. Creation is atomic:
 * the key is written to a temp file and hard-linked into place; when several processes race, the
 * first link wins and the others read the winner's key.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { JWK } from 'jose';

export interface IssuerKey {
  kid: string;
  privateJwk: JWK;
  publicJwk: JWK;
}

export const issuerKeyFile = (dataDir: string) => path.resolve(dataDir, 'issuer-key.json');

/** A fresh RSA-2048 key pair (not stored). */
export function generateIssuerKey(): IssuerKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk = publicKey.export({ format: 'jwk' }) as JWK;
  const kid = crypto
    .createHash('sha256')
    .update(JSON.stringify({ e: publicJwk.e, kty: publicJwk.kty, n: publicJwk.n }))
    .digest('base64url');
  const privateJwk = privateKey.export({ format: 'jwk' }) as JWK;
  return {
    kid,
    privateJwk: { ...privateJwk, kid, alg: 'RS256', use: 'sig' },
    publicJwk: { ...publicJwk, kid, alg: 'RS256', use: 'sig' },
  };
}

function readKey(file: string): IssuerKey {
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<IssuerKey>;
  if (!parsed.kid || !parsed.privateJwk?.n || !parsed.privateJwk.d || !parsed.publicJwk?.n) {
    throw new Error(`${file} is not a RERUM local issuer key; delete it to have a new one made`);
  }
  return parsed as IssuerKey;
}

/** Loads the key from `dataDir`, creating it (atomically) when there is none yet. */
export function loadOrCreateIssuerKey(dataDir: string): IssuerKey {
  const file = issuerKeyFile(dataDir);
  if (fs.existsSync(file)) return readKey(file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const key = generateIssuerKey();
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(key, null, 2), { mode: 0o600 });
  try {
    fs.linkSync(tmp, file);
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readKey(file);
    throw err;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}
