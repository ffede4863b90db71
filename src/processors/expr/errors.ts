/**
 * ExprError: every error of the expression language, at compile time (syntax, unknown functions,
 * operands that can never work, `expect` mismatches) and at run time (a record whose values do not
 * fit, e.g. `'abc' is not a number (in after.amount * 2)`). The message ends with the source and a
 * caret under the column:
 *
 *   'abc' is not a number at column 1:
 *     'abc' * 2
 *     ^
 *
 * `reason` is the message without that location, for one-line uses (dead-letter headers).
 */
export class ExprError extends Error {
  /** 1-based column in the source (source.length + 1 for "at the end"). */
  readonly column: number;
  readonly source: string;
  readonly reason: string;

  constructor(reason: string, column: number, source: string) {
    // Newlines and tabs shown as spaces so that the caret lines up under a one-line rendering.
    super(`${reason} at column ${column}:\n  ${source.replace(/[\t\n\r]/g, ' ')}\n  ${' '.repeat(Math.max(0, column - 1))}^`);
    this.name = 'ExprError';
    this.column = column;
    this.source = source;
    this.reason = reason;
  }
}
