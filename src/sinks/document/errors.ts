/** Error codes of the document sinks (`mongodb`, `postgres_jsonb`). */
import { defineErrors } from '../../core/errors.ts';

export const DOCUMENT_ERRORS = defineErrors('Document sinks', {
  SINK_TEMPLATE_INVALID: { retriable: false, meaning: 'a document template reads a column the source table lacks; the message gives the template leaf\'s file:line:column ([documents.md](connectors/documents.md))' },
  SINK_DERIVE_INVALID: { retriable: false, meaning: 'the derive module cannot be loaded or exports no valid `derivers`' },
  SINK_DERIVE_FAILED: { retriable: false, meaning: 'a deriver threw (the message names it and the key)' },
});
export const documentError = DOCUMENT_ERRORS.error;
