/** Error codes of the Cassandra sink (the codes every sink shares are in ../errors.ts). */
import { defineErrors } from '../../core/errors.ts';

export const CASSANDRA_ERRORS = defineErrors('Cassandra sink', {
  CASSANDRA_AUTH: { retriable: false, meaning: 'Cassandra refused the sink\'s credentials, or the user may not create or write the keyspace, a table or the offsets table; fix `connection.user`/`password` or grant the permission the message names' },
  CASSANDRA_TABLE: { retriable: false, meaning: 'a target table cannot be used: it is missing with `createTables: false`, its primary key is not the source key, its name is not a Cassandra name (letters, digits, `_`, at most 48), or the keyspace is missing with `createKeyspace: false`; the message says which and what to do' },
  CASSANDRA_UNAVAILABLE: { retriable: true, meaning: 'the cluster could not meet the consistency level in time (too few replicas up, a write timeout, an overloaded or bootstrapping node); the batch is applied again, which rewrites the same cells with the same timestamps' },
});
export const cassandraError = CASSANDRA_ERRORS.error;
