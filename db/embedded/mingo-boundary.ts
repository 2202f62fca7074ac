/**
 * Transitional: MongoDB semantics moved to mql/ (the shared home of the embedded database and the
 * cache). Kept only until the commands/storage split lands, so both branches merge cleanly.
 */
export * from '../../mql';
