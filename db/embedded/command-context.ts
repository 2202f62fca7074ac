/**
 * What every command handler is given and returns: the storage and cursors of the server, the
 * connection's id, the command document, its database and its OP_MSG document sequences.
 */
import type { CursorManager } from './cursors';
import type { Doc } from '../../mql';
import type { Storage } from './storage';

export interface CommandContext {
  storage: Storage;
  cursors: CursorManager;
  connectionId: number;
  /** The server's logger (validationAction 'warn' logs there). */
  logger?: { warn(obj: unknown, msg?: string): void };
}

export type Handler = (cmd: Doc, db: string, seq: Record<string, Doc[]>, ctx: CommandContext) => Doc | Promise<Doc>;
