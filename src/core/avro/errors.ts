/** Error codes of the Avro codec (schemas, binary values, object container files). */
import { defineErrors } from '../errors.ts';

export const AVRO_ERRORS = defineErrors('Avro', {
  AVRO_SCHEMA_INVALID: { retriable: false, meaning: 'an Avro schema is malformed (a missing or mistyped attribute, an undefined or duplicate name, a default that does not match its type, an invalid logical type); the message names what is wrong and where, as a JSON path into the schema' },
  AVRO_VALUE_INVALID: { retriable: false, meaning: 'a value does not match the Avro schema it is written with (a string where a long belongs, a missing field, an integer out of range, a decimal that needs rounding); the message names the field path and the value' },
  AVRO_DATA_INVALID: { retriable: false, meaning: 'Avro binary data does not decode with its schema (it ends early, has bytes left over, a union branch or enum index out of range, a negative length); the data was written with another schema, or is damaged' },
  AVRO_LONG_PRECISION: { retriable: false, meaning: 'a long beyond ±2^53 was read with `longs: \'number\'`, where a JavaScript number would round it; read with `longs: \'bigint\'` or `\'auto\'`' },
  AVRO_FILE_CORRUPT: { retriable: false, meaning: 'an Avro object container file is damaged or is no such file (wrong magic, bad header, a block whose size, sync marker, compressed data or records do not check); the message names the block and its byte offset' },
  AVRO_CODEC_UNSUPPORTED: { retriable: false, meaning: 'an Avro container file uses a compression codec Sluice does not implement (it reads and writes `null` and `deflate`); rewrite the file with one of those' },
});
export const avroError = AVRO_ERRORS.error;
