/** Error codes of the Iceberg sink (the codes every sink shares are in ../errors.ts). */
import { defineErrors } from '../../core/errors.ts';

export const ICEBERG_ERRORS = defineErrors('Iceberg sink', {
  ICEBERG_CONFLICT: { retriable: true, meaning: 'another writer committed the metadata version of an Iceberg table this sink was committing (put-if-absent, or the JDBC catalog\'s compare-and-swap, refused it); nothing of the batch is visible, the sink reads the table again and retries' },
  ICEBERG_METADATA_UNREADABLE: { retriable: false, meaning: 'an Iceberg table\'s metadata (a `metadata.json`, a manifest list or manifest) cannot be read; the message names the file' },
  ICEBERG_TABLE_FOREIGN: { retriable: false, meaning: 'the table an Iceberg sink would write is one it cannot continue (another format version, columns it did not write, a partition spec it did not make); the message names what differs' },
});
export const icebergError = ICEBERG_ERRORS.error;
