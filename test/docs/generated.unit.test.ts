/**
 * Drift between the specs and what is written elsewhere: docs/config.md, docs/errors.md,
 * docs/processing.md and docs/operations.md must be what `npm run docs` writes; every error code the source raises or compares must be declared in a
 * catalog, every declared code must be raised somewhere, and errors are built only through a
 * catalog's error() (no `new SluiceError(` outside src/core/errors.ts).
 *
 * The source is read with TypeScript's parser (not regular expressions), so calls split over lines
 * count and comments do not.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { FILES, generate, metricsReference, ROOT } from '../../scripts/docs.ts';
import { scanMetrics } from '../../scripts/metrics.ts';
import type { ErrorArea } from '../../src/core/errors.ts';
import { allErrorAreas } from '../../src/registry/index.ts';

/**
 * Declared codes raised with a computed code (`fooError(code, …)`), which the scan cannot see; each
 * with why. None today: every raise names its code literally.
 */
const RAISED_DYNAMICALLY: Record<string, string> = {};

/** An error code: upper-case words joined by `_` (`PG_SLOT_IN_USE`). */
const CODE = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/;

function walk(dir: string, ext: RegExp): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    // Build output (the benchmarks' compiled children in bench/**/out, dist) is not source: it
    // holds compiled copies of src/ once a benchmark or a build has run.
    if (e.isDirectory()) {
      if (e.name !== 'out' && e.name !== 'dist' && e.name !== 'node_modules') out.push(...walk(p, ext));
    } else if (ext.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const rel = (p: string): string => relative(ROOT, p).split('\\').join('/');
const parse = (file: string): ts.SourceFile => ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, /\.[cm]?js$/.test(file) ? ts.ScriptKind.JS : ts.ScriptKind.TS);
const at = (sf: ts.SourceFile, n: ts.Node): string => `${rel(sf.fileName)}:${sf.getLineAndCharacterOfPosition(n.getStart(sf)).line + 1}`;

function visit(n: ts.Node, fn: (n: ts.Node) => void): void {
  fn(n);
  n.forEachChild((c) => visit(c, fn));
}

const stringOf = (n: ts.Node | undefined): string | undefined => (n && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) ? n.text : undefined);

/** The name a call's callee ends with: `pgError` for `pgError(…)`, `error` for `PG_ERRORS.error(…)`. */
function calleeName(e: ts.Expression): { name: string; full: string } | undefined {
  // `(pgError as any)(…)` is still pgError's raise.
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isNonNullExpression(e) || ts.isSatisfiesExpression(e) || ts.isTypeAssertionExpression(e)) e = e.expression;
  if (ts.isIdentifier(e)) return { name: e.text, full: e.text };
  if (ts.isPropertyAccessExpression(e)) return { name: e.name.text, full: e.getText() };
  return undefined;
}

interface Site {
  code: string;
  where: string;
  /** The factory called, when the site is a raise. */
  factory?: string;
}

/** What src/ does with codes: raises through factories, and code strings it compares. */
function scanSource(files: string[], prefixes: Set<string>): { raised: Site[]; compared: Site[] } {
  const raised: Site[] = [];
  const compared: Site[] = [];
  const isOurs = (s: string | undefined): s is string => s !== undefined && CODE.test(s) && prefixes.has(s.split('_')[0]);
  for (const file of files) {
    const sf = parse(file);
    visit(sf, (n) => {
      // fooError('CODE', …) and AREA.error('CODE', …): a raise.
      if (ts.isCallExpression(n)) {
        const callee = calleeName(n.expression);
        const code = stringOf(n.arguments[0]);
        if (callee && /(Error|^error)$/.test(callee.name) && code !== undefined && CODE.test(code)) raised.push({ code, where: at(sf, n), factory: callee.full });
      }
      // code === 'PG_…', case 'PG_…':, { code: 'PG_…' }, code: 'SINK_REJECTED' | … (a type): a code the source relies on.
      if (ts.isBinaryExpression(n) && [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken, ts.SyntaxKind.EqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsToken].includes(n.operatorToken.kind)) {
        for (const side of [n.left, n.right]) if (isOurs(stringOf(side))) compared.push({ code: stringOf(side)!, where: at(sf, side) });
      }
      if (ts.isCaseClause(n) && isOurs(stringOf(n.expression))) compared.push({ code: stringOf(n.expression)!, where: at(sf, n) });
      if ((ts.isPropertyAssignment(n) || ts.isPropertySignature(n)) && /^["']?code["']?$/.test(n.name.getText(sf))) {
        const value = ts.isPropertyAssignment(n) ? n.initializer : n.type;
        if (value) visit(value, (v) => (ts.isStringLiteral(v) && isOurs(v.text) ? compared.push({ code: v.text, where: at(sf, v) }) : undefined));
      }
    });
  }
  return { raised, compared };
}

/** Every `new SluiceError(` in the given files. */
function newSluiceErrors(files: string[]): string[] {
  const out: string[] = [];
  for (const file of files) {
    const sf = parse(file);
    visit(sf, (n) => {
      if (!ts.isNewExpression(n)) return;
      const name = ts.isIdentifier(n.expression) ? n.expression.text : ts.isPropertyAccessExpression(n.expression) ? n.expression.name.text : '';
      if (name === 'SluiceError') out.push(at(sf, n));
    });
  }
  return out;
}

const list = (sites: Site[]): string => sites.map((s) => `${s.code} (${s.where})`).join(', ');

describe('generated docs and error codes', () => {
  const areas = allErrorAreas();
  const declared = new Map<string, ErrorArea<any>>();
  for (const a of areas) for (const code of Object.keys(a.catalog)) declared.set(code, a);
  const prefixes = new Set([...declared.keys()].map((c) => c.split('_')[0]));
  const srcFiles = walk(join(ROOT, 'src'), /\.ts$/);
  const { raised, compared } = scanSource(srcFiles, prefixes);

  for (const f of FILES) {
    it(`${f.path} is what npm run docs writes`, () => {
      const g = generate(ROOT, f.path)[0];
      if (g.current === g.expected) return;
      const a = g.current.split('\n');
      const b = g.expected.split('\n');
      let i = 0;
      while (i < a.length && a[i] === b[i]) i++;
      assert.fail(`${f.path} differs from the specs at line ${i + 1}: run npm run docs\n  written:  ${a[i] ?? '(end of file)'}\n  expected: ${b[i] ?? '(end of file)'}`);
    });
  }

  it('the pages the generated sections link to exist', () => {
    const broken = new Set<string>();
    for (const g of generate()) {
      // Code spans are not links (`bucket[16](id)` is a partition field).
      for (const m of g.expected.replace(/`[^`\n]*`/g, '').matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(m[1])) continue;
        if (!existsSync(resolve(ROOT, dirname(g.path), m[1]))) broken.add(`${g.path} → ${m[1]}`);
      }
    }
    assert.deepEqual([...broken], [], `links to missing pages (a spec's \`docs\` or a description names a page that does not exist): ${[...broken].join(', ')}`);
  });

  it('each code is declared once, in a catalog the registry reaches', async () => {
    const seen = new Map<string, string>();
    const twice: string[] = [];
    for (const a of areas) {
      for (const code of Object.keys(a.catalog)) {
        if (seen.has(code)) twice.push(`${code} (${seen.get(code)} and ${a.area})`);
        seen.set(code, a.area);
      }
    }
    assert.deepEqual(twice, [], `codes declared in two catalogs: ${twice.join(', ')}`);
    // Catalogs defined in src/ but not in any spec's `errors` would be missing from docs/errors.md.
    const unreachable: string[] = [];
    for (const file of srcFiles) {
      if (!/\bdefineErrors\(/.test(readFileSync(file, 'utf8'))) continue;
      const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      for (const [name, v] of Object.entries(mod)) {
        const isArea = typeof v === 'object' && v !== null && 'catalog' in v && 'area' in v && typeof (v as ErrorArea<any>).error === 'function';
        if (isArea && !areas.includes(v as ErrorArea<any>)) unreachable.push(`${name} (${rel(file)})`);
      }
    }
    assert.deepEqual(unreachable, [], `error catalogs no spec lists in its \`errors\` (so docs/errors.md lacks them): ${unreachable.join(', ')}`);
  });

  it('every code raised or compared in src/ is declared in a catalog', () => {
    assert.ok(raised.length > 50, `the scan found only ${raised.length} raises: is it still reading src/?`);
    const undeclared = [...raised, ...compared].filter((s) => !declared.has(s.code));
    assert.deepEqual(undeclared.map((s) => s.code), [], `codes used in src/ that no catalog declares (add them to the area's catalog, src/**/errors.ts): ${list(undeclared)}`);
  });

  it("each factory raises only its own catalog's codes", async () => {
    // The factories: every exported `X = AREA.error` of a catalog module, and `AREA.error` itself.
    const factories = new Map<string, ErrorArea<any>>();
    for (const file of srcFiles.filter((f) => /\bdefineErrors\(/.test(readFileSync(f, 'utf8')))) {
      const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
      for (const [name, v] of Object.entries(mod)) {
        const area = areas.find((a) => a === v || a.error === v);
        if (area) factories.set(area === v ? `${name}.error` : name, area);
      }
    }
    const wrong = raised.filter((s) => {
      const area = s.factory ? factories.get(s.factory) : undefined;
      return area !== undefined && !(s.code in area.catalog) && declared.has(s.code);
    });
    assert.deepEqual(wrong.map((s) => s.code), [], `codes raised through another area's factory: ${wrong.map((s) => `${s.code} by ${s.factory} (${s.where}; declared in ${declared.get(s.code)!.area})`).join(', ')}`);
  });

  it('every declared code is raised somewhere in src/', () => {
    const raisedCodes = new Set(raised.map((s) => s.code));
    const never = [...declared.keys()].filter((c) => !raisedCodes.has(c) && !(c in RAISED_DYNAMICALLY));
    assert.deepEqual(never, [], `declared but never raised in src/ (users read about errors they cannot get): ${never.map((c) => `${c} (${declared.get(c)!.area})`).join(', ')}; raise each through its catalog's error(), remove it from the catalog, or, if it is raised with a computed code, list it in RAISED_DYNAMICALLY with why`);
    const stale = Object.keys(RAISED_DYNAMICALLY).filter((c) => !declared.has(c) || raisedCodes.has(c));
    assert.deepEqual(stale, [], `RAISED_DYNAMICALLY lists codes that are undeclared or raised literally: ${stale.join(', ')}`);
  });

  it('errors are built only by a catalog (no new SluiceError outside src/core/errors.ts)', () => {
    const code = ['src', 'bin', 'scripts', 'examples', 'bench'].flatMap((d) => walk(join(ROOT, d), /\.([cm]?[jt]s)$/));
    const outside = newSluiceErrors(code.filter((f) => rel(f) !== 'src/core/errors.ts'));
    assert.deepEqual(outside, [], `new SluiceError( outside src/core/errors.ts: ${outside.join(', ')}; raise it through the area's catalog (e.g. pgError('PG_…', …)) so its code is declared and documented`);
    assert.equal(newSluiceErrors([join(ROOT, 'src/core/errors.ts')]).length, 1, 'the scan still finds the one in defineErrors');
  });
});


describe('metrics reference (scripts/metrics.ts)', () => {
  it('reads every registration under src/, labels included', () => {
    const { metrics, problems } = scanMetrics(ROOT);
    assert.deepEqual(problems, [], 'registrations the scan cannot read fail the docs');
    const events = metrics.find((m) => m.name === 'sluice_events_in_total');
    assert.ok(events, 'the component metrics are found through ComponentMetrics');
    assert.equal(events.type, 'counter');
    assert.deepEqual(events.labels, ['pipeline', 'component'], "every component's series have these");
    assert.ok(events.someLabels.includes('sink') && events.someLabels.includes('processor'), 'and each kind its own name label');
    assert.deepEqual(metrics.find((m) => m.name === 'sluice_errors_total')?.labels, ['pipeline', 'component', 'stage']);
    assert.equal(metrics.find((m) => m.name === 'sluice_batch_latency_seconds')?.type, 'histogram');
  });

  it('fails loudly on a registration it cannot read', () => {
    const t = mkdtempSync(join(tmpdir(), 'sluice-metrics-scan-'));
    try {
      mkdirSync(join(t, 'src'));
      writeFileSync(
        join(t, 'src', 'm.ts'),
        [
          "import { Counter, Gauge as G, Registry } from './core/metrics.ts';",
          'const r = new Registry();',
          "const base = { pipeline: 'p' };",
          "r.register(new Counter('sluice_ok_total', 'Fine' + ' too', { ...base, sink: 's' }));",
          "r.register(new G(`sluice_${'x'}_bytes`, 'Computed name'));",
          "export function f(o: { labels: Record<string, string> }) { r.register(new Counter('sluice_odd_total', 'Labels from elsewhere', o.labels)); }",
          'const make = (n: string, h: string, l: Record<string, string>) => new G(n, h, l);',
          'const metric = (reg: Registry, m: typeof make, n: string, h: string, l: Record<string, string>) => reg.register(m(n, h, l));',
          "export function g(table: string) { metric(r, make, 'sluice_made_rows', 'Made by a factory', { pipeline: 'p', table }); }",
        ].join('\n'),
      );
      const scan = scanMetrics(t);
      assert.deepEqual(scan.metrics.map((m) => [m.name, m.type, m.help, m.labels]), [
        ['sluice_made_rows', 'gauge', 'Made by a factory', ['pipeline', 'table']],
        ['sluice_ok_total', 'counter', 'Fine too', ['pipeline', 'sink']],
      ]);
      assert.equal(scan.problems.length, 2, scan.problems.join('\n'));
      assert.match(scan.problems[0], /^src\/m\.ts:5: new G\( with a name that is not a string literal/);
      assert.match(scan.problems[1], /^src\/m\.ts:6: sluice_odd_total: labels `o\.labels`/);
      assert.throws(() => metricsReference(t), /metric registrations the docs cannot read[\s\S]*src\/m\.ts:5/);
    } finally {
      rmSync(t, { recursive: true, force: true });
    }
  });
});
