/** The error codes of scheduled validation (a schedule's `validate:`, docs/quality.md#scheduled-validation). */
import { defineErrors } from '../../core/errors.ts';

export const VALIDATION_ERRORS = defineErrors('Scheduled validation', {
  VALIDATION_FAILED: { retriable: false, meaning: 'a scheduled validation found rows of the target table that fail its expectations; the run is recorded `failed` in the schedules\' history with each failing expectation, its count of failing rows and up to `examples` keys with the reason, and the pipeline goes on. Fix the data (or the expectation); the next run checks again' },
  VALIDATION_TABLE: { retriable: false, meaning: 'a scheduled validation cannot check the table as configured: the table (or a referenced table or column) does not exist in the sink\'s database, or it has no primary key to read it by; the message names what is missing' },
  VALIDATION_READ: { retriable: true, meaning: 'a scheduled validation could not read the sink\'s database (refused connection, timeout, a query error); the run is recorded `failed` and the next fire time tries again' },
});
export const validationError = VALIDATION_ERRORS.error;
