/** Error codes of the schema registry: the built-in registry, its store, the client and the wire format. */
import { defineErrors } from '../core/errors.ts';

export const REGISTRY_ERRORS = defineErrors('Schema registry', {
  REGISTRY_UNREACHABLE: { retriable: true, maxRetries: 30, meaning: 'the schema registry at the URL in the message did not answer (connection refused, a timeout, a reset); check that it runs and the URL (Confluent: `http://host:8081`, Apicurio: `http://host:8080/apis/ccompat/v7`)' },
  REGISTRY_HTTP: { retriable: 'depends', meaning: 'the schema registry answered with an error (its HTTP status, Confluent error code and message are in the message): 401/403 wrong or missing credentials, 404 an unknown subject/version/id, 5xx a registry fault (retried)' },
  REGISTRY_INCOMPATIBLE: { retriable: false, meaning: 'a new schema is incompatible with the subject\'s registered versions under its compatibility level; the message names the field and what breaks. Make the change compatible (a default for an added column), or change the subject\'s compatibility level deliberately' },
  REGISTRY_SCHEMA_INVALID: { retriable: false, meaning: 'a schema given to the registry is not a valid Avro schema, or is of a type the built-in registry does not serve (only AVRO); the message says what is wrong' },
  REGISTRY_STORE: { retriable: false, meaning: 'the built-in registry\'s topic holds a record it cannot read (not written by Sluice\'s registry, or damaged); the message names the offset' },
  REGISTRY_WIRE: { retriable: false, meaning: 'a record is not in the Confluent wire format (magic byte 0, a 4-byte schema id, the Avro body): it is shorter than 5 bytes or starts with another byte; the data was written by another serializer' },
});
export const registryError = REGISTRY_ERRORS.error;
