/** The RERUM object model's rules: identifiers, `__rerum`, documents and responses, history/release trees. */
export * from './ids';
export * from './metadata';
export * from './document';
export * from './tree';
export * from './errors';
