/**
 * The metrics Sluice exports, read from the source: every `new Counter(…)`, `new Gauge(…)` and
 * `new Histogram(…)` of src/core/metrics.ts anywhere under src/, with its name, help text and label
 * keys. `npm run docs` writes the table into docs/operations.md; test/docs/ checks it is current and
 * test/docs/observability.test.ts that a running pipeline exports what it lists.
 *
 * The source is read with TypeScript's parser. Label keys are followed through object literals,
 * spreads, `const labels = {…}` declarations in an enclosing block, and a class's constructor
 * parameter (`new ComponentMetrics(registry, { pipeline, component: 'source' })`: the labels of each
 * `new ComponentMetrics(` call). A factory, `new Gauge(n, h, l)` of a function's own parameters,
 * counts at each call it is handed to, with the literal `sluice_…` name, the help after it and the
 * labels after that (`metric(registry, gauge, 'sluice_x', 'Help', { pipeline })`). A registration the scan cannot read (a computed name, a help text
 * that is not a literal, labels from somewhere it does not follow) is a problem, reported with its
 * file and line: `npm run docs` and the docs test fail on it rather than document less than is
 * exported. Write such a registration plainly (literal name and help, labels as an object literal
 * or a `const` in the same function).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricDef {
  name: string;
  type: MetricType;
  help: string;
  /** Label keys every series of the metric has, in the order the code first writes them. */
  labels: string[];
  /** Label keys only some series have (a component's own: `sink` on a sink's series). */
  someLabels: string[];
  /** Where it is registered: `src/engine/sink-task.ts:93`, sorted. */
  where: string[];
}

export interface Scan {
  metrics: MetricDef[];
  /** Registrations that could not be read, as `file:line: why`. */
  problems: string[];
}

const KINDS: Record<string, MetricType> = { Counter: 'counter', Gauge: 'gauge', Histogram: 'histogram' };

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (/\.[cm]?ts$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

class Unreadable extends Error {}

/** A string literal's text, also through `+` and a `const` of one. */
function textOf(n: ts.Node | undefined): string | undefined {
  if (!n) return undefined;
  while (ts.isParenthesizedExpression(n)) n = n.expression;
  if (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n)) return n.text;
  // `const help = '…'` in an enclosing block.
  if (ts.isIdentifier(n)) {
    const d = declarationOf(n, n.text);
    return d && ts.isVariableDeclaration(d) && d.parent.flags & ts.NodeFlags.Const ? textOf(d.initializer) : undefined;
  }
  if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const l = textOf(n.left);
    const r = textOf(n.right);
    return l !== undefined && r !== undefined ? l + r : undefined;
  }
  return undefined;
}

/** The names `file` binds to metrics.ts's Counter, Gauge and Histogram (imports, possibly renamed; the file itself). */
function metricClassesOf(sf: ts.SourceFile): Map<string, MetricType> {
  const out = new Map<string, MetricType>();
  if (/(^|[/\\])core[/\\]metrics\.ts$/.test(sf.fileName)) for (const [k, v] of Object.entries(KINDS)) out.set(k, v);
  for (const st of sf.statements) {
    if (!ts.isImportDeclaration(st) || !ts.isStringLiteral(st.moduleSpecifier) || !/(^|\/)metrics(\.ts|\.js)?$/.test(st.moduleSpecifier.text)) continue;
    const named = st.importClause?.namedBindings;
    if (!named || !ts.isNamedImports(named)) continue;
    for (const el of named.elements) {
      const orig = (el.propertyName ?? el.name).text;
      if (KINDS[orig] && !el.isTypeOnly) out.set(el.name.text, KINDS[orig]);
    }
  }
  return out;
}

interface Ctx {
  files: ts.SourceFile[];
  at(n: ts.Node): string;
}

/** The variable declaration of `name` visible at `from`: in an enclosing block, function parameters or the file. */
function declarationOf(from: ts.Node, name: string): ts.VariableDeclaration | ts.ParameterDeclaration | undefined {
  for (let n: ts.Node | undefined = from.parent; n; n = n.parent) {
    if (ts.isFunctionLike(n)) {
      for (const p of n.parameters) if (ts.isIdentifier(p.name) && p.name.text === name) return p;
    }
    const statements = ts.isBlock(n) || ts.isSourceFile(n) || ts.isModuleBlock(n) ? n.statements : ts.isCaseClause(n) || ts.isDefaultClause(n) ? n.statements : undefined;
    if (statements) {
      for (const st of statements) {
        if (!ts.isVariableStatement(st)) continue;
        for (const d of st.declarationList.declarations) if (ts.isIdentifier(d.name) && d.name.text === name) return d;
      }
    }
    if ((ts.isForOfStatement(n) || ts.isForStatement(n) || ts.isForInStatement(n)) && n.initializer && ts.isVariableDeclarationList(n.initializer)) {
      for (const d of n.initializer.declarations) if (ts.isIdentifier(d.name) && d.name.text === name) return d;
    }
  }
  return undefined;
}

/**
 * The label key sets `e` can hold: one set for a literal, one per call site for a constructor
 * parameter. Throws Unreadable with the reason when it cannot tell.
 */
function labelSets(e: ts.Expression, ctx: Ctx, depth = 0): string[][] {
  if (depth > 8) throw new Unreadable('labels nest too deep to follow');
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isNonNullExpression(e)) e = e.expression;
  if (ts.isObjectLiteralExpression(e)) {
    let sets: string[][] = [[]];
    for (const p of e.properties) {
      if (ts.isSpreadAssignment(p)) {
        const inner = labelSets(p.expression, ctx, depth + 1);
        sets = sets.flatMap((s) => inner.map((i) => [...s, ...i]));
        continue;
      }
      let key: string | undefined;
      if (ts.isShorthandPropertyAssignment(p)) key = p.name.text;
      else if (ts.isPropertyAssignment(p)) key = ts.isIdentifier(p.name) || ts.isStringLiteral(p.name) || ts.isNoSubstitutionTemplateLiteral(p.name) ? p.name.text : undefined;
      if (key === undefined) throw new Unreadable(`a label key it cannot read (${p.getText().slice(0, 40)})`);
      sets = sets.map((s) => [...s, key!]);
    }
    return sets;
  }
  if (ts.isIdentifier(e)) {
    const d = declarationOf(e, e.text);
    if (!d) throw new Unreadable(`labels \`${e.text}\` not declared in an enclosing block`);
    if (ts.isParameter(d)) return constructorArgSets(d, ctx, depth);
    if (!d.initializer) throw new Unreadable(`labels \`${e.text}\` declared without a value`);
    return labelSets(d.initializer, ctx, depth + 1);
  }
  if (ts.isPropertyAccessExpression(e) && e.expression.kind === ts.SyntaxKind.ThisKeyword) {
    const cls = ts.findAncestor(e, ts.isClassLike);
    const name = e.name.text;
    for (const m of cls?.members ?? []) {
      if (ts.isPropertyDeclaration(m) && ts.isIdentifier(m.name) && m.name.text === name && m.initializer) return labelSets(m.initializer, ctx, depth + 1);
      if (ts.isConstructorDeclaration(m)) for (const p of m.parameters) if (ts.isIdentifier(p.name) && p.name.text === name && ts.getModifiers(p)?.length) return constructorArgSets(p, ctx, depth);
    }
    throw new Unreadable(`labels \`this.${name}\`: not a class property with a value or a constructor parameter`);
  }
  throw new Unreadable(`labels \`${e.getText().slice(0, 40)}\`: only object literals, spreads, constants and constructor parameters are followed`);
}

/** A constructor parameter's label sets: the argument at its place in each `new Class(…)` under src/. */
function constructorArgSets(p: ts.ParameterDeclaration, ctx: Ctx, depth: number): string[][] {
  const ctor = p.parent;
  const cls = ts.isConstructorDeclaration(ctor) ? ctor.parent : undefined;
  if (!cls || !ts.isClassDeclaration(cls) || !cls.name) throw new Unreadable(`labels from parameter \`${p.name.getText()}\`, which is not a class constructor's`);
  const index = ctor.parameters.indexOf(p as ts.ParameterDeclaration);
  const className = cls.name.text;
  const out: string[][] = [];
  for (const sf of ctx.files) {
    const visit = (n: ts.Node): void => {
      if (ts.isNewExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === className) {
        const arg = n.arguments?.[index];
        if (!arg) throw new Unreadable(`\`new ${className}(\` at ${ctx.at(n)} passes no labels`);
        try {
          out.push(...labelSets(arg, ctx, depth + 1));
        } catch (err) {
          if (err instanceof Unreadable) throw new Unreadable(`${err.message} (passed to new ${className}( at ${ctx.at(n)})`);
          throw err;
        }
      }
      n.forEachChild(visit);
    };
    visit(sf);
  }
  if (!out.length) throw new Unreadable(`labels from ${className}'s constructor, which nothing in src/ calls`);
  return out;
}

/**
 * The function `new X(…)` is the body of when its name argument is one of that function's
 * parameters (a factory); undefined for a registration with its own name.
 */
function factoryOf(n: ts.NewExpression): ts.SignatureDeclaration | undefined {
  const first = n.arguments?.[0];
  if (!first || !ts.isIdentifier(first)) return undefined;
  const d = declarationOf(first, first.text);
  if (!d || !ts.isParameter(d)) return undefined;
  const fn = d.parent;
  // A class's own constructor passing its parameters on is not a factory: Counter/Gauge/Histogram themselves.
  return ts.isConstructorDeclaration(fn) ? undefined : fn;
}

/** The calls in `sf` that are handed `fn`: inline, or by the name of the `const` that holds it. */
function factoryCalls(fn: ts.SignatureDeclaration, sf: ts.SourceFile): ts.CallExpression[] {
  const holder = ts.isVariableDeclaration(fn.parent) && ts.isIdentifier(fn.parent.name) ? fn.parent : undefined;
  const out: ts.CallExpression[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && n.arguments.some((a) => a === fn || (holder && ts.isIdentifier(a) && a.text === (holder.name as ts.Identifier).text && declarationOf(a, a.text) === holder))) out.push(n);
    n.forEachChild(visit);
  };
  visit(sf);
  return out;
}

/** Reads the metric registrations of `files` (default: every .ts file under `root`/src). */
export function scanMetrics(root: string, files = walk(join(root, 'src'))): Scan {
  const rel = (p: string): string => relative(root, p).split('\\').join('/');
  const sources = files.map((f) => ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS));
  const ctx: Ctx = { files: sources, at: (n) => `${rel(n.getSourceFile().fileName)}:${n.getSourceFile().getLineAndCharacterOfPosition(n.getStart()).line + 1}` };
  const byName = new Map<string, { type: MetricType; help: string; sets: string[][]; where: string[] }>();
  const problems: string[] = [];
  for (const sf of sources) {
    const classes = metricClassesOf(sf);
    if (!classes.size) continue;
    /** Records one registration: name, help and labels as nodes of the code. */
    const record = (type: MetricType, where: string, cls: string, nameArg: ts.Node | undefined, helpArg: ts.Node | undefined, labelsArg: ts.Expression | undefined): void => {
      const name = textOf(nameArg);
      if (name === undefined) return void problems.push(`${where}: new ${cls}( with a name that is not a string literal or constant (${nameArg?.getText().slice(0, 40) ?? 'none'})`);
      if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) return void problems.push(`${where}: ${name} is not a Prometheus metric name`);
      const help = textOf(helpArg);
      if (help === undefined) return void problems.push(`${where}: ${name}: help text is not a string literal or constant`);
      let sets: string[][];
      try {
        sets = labelsArg ? labelSets(labelsArg, ctx) : [[]];
      } catch (err) {
        if (err instanceof Unreadable) return void problems.push(`${where}: ${name}: ${err.message}`);
        throw err;
      }
      const prev = byName.get(name);
      if (prev && prev.type !== type) return void problems.push(`${where}: ${name} registered as a ${type} here and as a ${prev.type} at ${prev.where[0]}`);
      if (prev && prev.help !== help) return void problems.push(`${where}: ${name} has another help text at ${prev.where[0]} (Prometheus keeps one per name)`);
      if (prev) {
        prev.sets.push(...sets);
        prev.where.push(where);
      } else byName.set(name, { type, help, sets, where: [where] });
    };
    const visit = (n: ts.Node): void => {
      n.forEachChild(visit);
      if (!ts.isNewExpression(n) || !ts.isIdentifier(n.expression) || !classes.has(n.expression.text)) return;
      const type = classes.get(n.expression.text)!;
      const args = n.arguments ?? [];
      const factory = factoryOf(n);
      if (!factory) return record(type, ctx.at(n), n.expression.text, args[0], args[1], args[2]);
      // A factory (`(name, help, labels) => new Gauge(name, help, labels)`) handed to a helper
      // with the name, help and labels: `metric(registry, gauge, 'sluice_x', 'Help', { … })`.
      const calls = factoryCalls(factory, sf);
      if (!calls.length) return void problems.push(`${ctx.at(n)}: new ${n.expression.text}( of its parameters, in a function not passed to a call with a literal metric name`);
      for (const c of calls) {
        const i = c.arguments.findIndex((a) => /^sluice_[a-z0-9_]+$/.test(textOf(a) ?? ''));
        if (i < 0) {
          problems.push(`${ctx.at(c)}: a metric factory passed to a call without a literal metric name`);
          continue;
        }
        record(type, ctx.at(c), n.expression.text, c.arguments[i], c.arguments[i + 1], c.arguments[i + 2]);
      }
    };
    visit(sf);
  }
  const metrics = [...byName].map(([name, m]): MetricDef => {
    const all = new Set(m.sets.flat());
    const every = [...all].filter((k) => m.sets.every((s) => s.includes(k)));
    // In the order the code writes them (pipeline first, as every registration does).
    return { name, type: m.type, help: m.help, labels: every, someLabels: [...all].filter((k) => !every.includes(k)), where: m.where.sort() };
  });
  return { metrics: metrics.sort((a, b) => a.name.localeCompare(b.name)), problems };
}
