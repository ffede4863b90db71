/**
 * pgoutput decoding and PostgreSQL type mapping.
 *   decodeMessage(payload, inStream) → PgOutputMessage   (decoder.ts)
 *   new TypeCatalog(client, binary).relationSchema(rel) → RelationSchema with converters (types.ts)
 */
export { decodeMessage } from './decoder.ts';
export type * from './messages.ts';
export { TypeCatalog, type RelationSchema, type ColumnMapping } from './types.ts';
