/**
 * Key templates: `features:{key}`, `customer:{customer_id}:risk`, `{table}:{key.id}`. A template is
 * literal text with `{name}` references; `{{` and `}}` are literal braces.
 */

export type KeyPart = { text: string } | { ref: 'key' | 'table' | 'schema' | 'topic' } | { keyField: string } | { field: string };

const NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** The parts of a template, or the problem with it as a message. */
export function parseTemplate(t: string): KeyPart[] | string {
  const parts: KeyPart[] = [];
  let text = '';
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if ((c === '{' || c === '}') && t[i + 1] === c) {
      text += c;
      i++;
      continue;
    }
    if (c === '}') return `a "}" at position ${i + 1} closes nothing (write "}}" for a literal brace)`;
    if (c !== '{') {
      text += c;
      continue;
    }
    const end = t.indexOf('}', i);
    if (end < 0) return `the "{" at position ${i + 1} is not closed`;
    const name = t.slice(i + 1, end).trim();
    if (text) parts.push({ text });
    text = '';
    if (name === 'key' || name === 'table' || name === 'schema' || name === 'topic') parts.push({ ref: name });
    else if (name.startsWith('key.') && NAME.test(name.slice(4))) parts.push({ keyField: name.slice(4) });
    else if (NAME.test(name)) parts.push({ field: name });
    else return `{${name}} is not a reference: use {key}, {key.<column>}, {<field>}, {table}, {schema} or {topic}`;
    i = end;
  }
  if (text) parts.push({ text });
  if (!parts.some((p) => !('text' in p))) return 'the key template has no reference ({key}, {<field>}, …): every record would write the same key';
  return parts;
}

/** The problem with a template, for config validation; null when it is fine. */
export function templateProblem(t: string): string | null {
  const p = parseTemplate(t);
  return typeof p === 'string' ? p : null;
}
