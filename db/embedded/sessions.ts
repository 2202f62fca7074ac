/**
 * Logical sessions a server has seen, for the `$listLocalSessions` aggregation stage: every command
 * that carries an `lsid` records (or refreshes) its session; `endSessions` forgets them; sessions
 * idle for longer than the advertised logicalSessionTimeoutMinutes (30) expire. In memory only, one
 * registry per server (keyed by its cursor manager, which lives exactly as long). Without
 * authentication every session belongs to the same (unauthenticated) user, whose `uid` is, as in
 * mongod, the SHA-256 digest of the empty user name.
 */
import { createHash } from 'node:crypto';
import { Binary } from 'bson';
import { bsonTypeName, deepCopy, isPlainObject, type Doc } from '../../mql';
import { fail } from './errors';
import { valueKey } from './value-key';

const TIMEOUT_MS = 30 * 60 * 1000;
const MAX_SESSIONS = 1_000_000; // mongod's maxSessions default
const UNAUTHENTICATED_UID = new Binary(createHash('sha256').update('').digest(), 0);

class SessionRegistry {
  private readonly sessions = new Map<string, { id: unknown; lastUse: Date }>();

  touch(lsid: Doc): void {
    if (lsid.id === undefined) return;
    const key = valueKey(lsid.id);
    this.sessions.delete(key); // re-insert: the map stays ordered by last use
    this.sessions.set(key, { id: lsid.id, lastUse: new Date() });
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value as string);
  }

  end(ids: unknown[]): void {
    for (const s of ids) if (isPlainObject(s) && s.id !== undefined) this.sessions.delete(valueKey(s.id));
  }

  list(): Doc[] {
    const cutoff = Date.now() - TIMEOUT_MS;
    const out: Doc[] = [];
    for (const [k, s] of this.sessions) {
      if (s.lastUse.getTime() < cutoff) this.sessions.delete(k);
      else out.push({ _id: { id: deepCopy(s.id), uid: UNAUTHENTICATED_UID }, lastUse: new Date(s.lastUse) });
    }
    return out;
  }
}

const registries = new WeakMap<object, SessionRegistry>();

/** The session registry of the server that owns `owner` (its cursor manager). */
export function sessionsOf(owner: object): SessionRegistry {
  let r = registries.get(owner);
  if (!r) {
    r = new SessionRegistry();
    registries.set(owner, r);
  }
  return r;
}

/**
 * The documents `$listLocalSessions` starts a pipeline with. Only in `{aggregate: 1}` on the admin
 * database (InvalidNamespace otherwise). `{}` and `{allUsers: true}` list every session (there is
 * one user); `{users: [...]}` lists the sessions of those users, none of which exists here.
 */
export function listLocalSessions(arg: unknown, db: string, collection: string | undefined, owner: object): Doc[] {
  if (collection !== undefined || db !== 'admin')
    throw fail('InvalidNamespace', "$listLocalSessions must be run against the 'admin' database with {aggregate: 1}");
  if (!isPlainObject(arg)) throw fail('TypeMismatch', `$listLocalSessions requires an object argument, found: ${bsonTypeName(arg)}`);
  for (const k of Object.keys(arg))
    if (k !== 'allUsers' && k !== 'users') throw fail('IDLUnknownField', `BSON field '$listLocalSessions.${k}' is an unknown field.`);
  if (arg.allUsers === true && arg.users !== undefined) throw fail('BadValue', 'Cannot specify both allUsers and users');
  if (Array.isArray(arg.users) && arg.users.length > 0) return [];
  return sessionsOf(owner).list();
}
