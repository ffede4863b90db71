/**
 * Sluice's Apache Avro codec (specification 1.12), written for Iceberg manifests and manifest
 * lists (object container files) and Confluent-framed Kafka records: schemas (schema.ts), the
 * binary encoding (binary.ts), object container files (container.ts), and the error codes
 * (errors.ts).
 */
export { AVRO_ERRORS, avroError } from './errors.ts';
export {
  canonicalForm,
  fingerprint64,
  maxFixedPrecision,
  parseSchema,
  parseSchemaText,
  PRIMITIVE_NAMES,
  schemaToJson,
  stringifySchema,
  typeName,
  type ArraySchema,
  type Attrs,
  type AvroSchema,
  type Duration,
  type EnumSchema,
  type FixedSchema,
  type LogicalType,
  type MapSchema,
  type NamedSchema,
  type ParseSchemaOptions,
  type PrimitiveName,
  type PrimitiveSchema,
  type RecordField,
  type RecordSchema,
  type UnionSchema,
} from './schema.ts';
export { AvroCodec, AvroReader, AvroWriter, type CodecOptions } from './binary.ts';
export {
  ContainerHeader,
  ContainerReader,
  ContainerStreamReader,
  ContainerWriter,
  encodeContainer,
  openContainerFile,
  readContainer,
  readContainerFile,
  writeContainerFile,
  type ContainerBlock,
  type ContainerCodec,
  type ContainerWriteOptions,
} from './container.ts';
